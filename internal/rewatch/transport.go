package rewatch

import (
	"net/http"

	"k8s.io/client-go/rest"
)

// Config returns a copy of cfg for the clients whose informers use
// NewInformer: a watch request the server answers with "come back later"
// (429 or 503 with a Retry-After header) fails at once, and the watch is
// reopened at ListerWatcher's pace.
//
// Why: client-go's REST client sleeps out a Retry-After itself before it
// tries again, inside the watch call. A kube-apiserver that is starting
// answers watches of custom resources with 503 and "Retry-After: 5" until
// it serves them, so the dev edge's watch of Mappings came back up to 5 s
// after the server was (issue 13). Other requests keep client-go's
// handling.
func Config(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return watchRetryAfter{rt} })
	return cfg
}

type watchRetryAfter struct{ next http.RoundTripper }

func (t watchRetryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && isWatch(req) && resp.Header.Get("Retry-After") != "" {
		// The response is this request's own: dropping the header leaves
		// the error to the caller, ListerWatcher.
		resp.Header.Del("Retry-After")
	}
	return resp, err
}

func isWatch(req *http.Request) bool {
	v := req.URL.Query().Get("watch")
	return v == "true" || v == "1"
}

// WrappedRoundTripper lets client-go reach the transport underneath
// (utilnet.RoundTripperWrapper), to close its idle connections.
func (t watchRetryAfter) WrappedRoundTripper() http.RoundTripper { return t.next }
