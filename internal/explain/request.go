package explain

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"golang.org/x/net/http/httpguts"

	"github.com/crossmap/crossmap/emissary"
)

// ErrBadRequest is wrapped by every error about the request to explain
// itself (a malformed method, URL or header), as opposed to the cluster's
// state.
var ErrBadRequest = errors.New("bad request to explain")

// ErrNoHost is wrapped when no Host of the installation serves the
// request's hostname: Envoy has no virtual host for it.
var ErrNoHost = errors.New("no Host serves the hostname")

// Request is the request to explain, as a user writes it.
type Request struct {
	// Method is the HTTP method, e.g. GET.
	Method string `json:"method"`
	// URL is absolute: http or https, the hostname the request's Host
	// header carries, the path and query.
	URL string `json:"url"`
	// Headers are "name: value" lines, as curl's -H takes them.
	Headers []string `json:"headers,omitempty"`
}

// RequestView is the request as Envoy's route matching reads it.
type RequestView struct {
	Method  string              `json:"method"`
	Scheme  string              `json:"scheme"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
}

// parse checks r and reads it as Envoy would receive it.
func (r Request) parse() (emissary.Request, RequestView, error) {
	var req emissary.Request
	var view RequestView
	bad := func(format string, args ...any) (emissary.Request, RequestView, error) {
		return req, view, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(method) {
		return bad("method %q is not an HTTP method (a token such as GET or POST)", r.Method)
	}
	if r.URL == "" {
		return bad("no URL: give the request's URL, e.g. http://podinfo.example.com/api/info")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return bad("URL %q: %v", r.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("URL %q: the scheme must be http or https, with the hostname the request is sent to (its Host header), e.g. http://podinfo.example.com/api/info", r.URL)
	}
	if u.Host == "" {
		return bad("URL %q has no hostname", r.URL)
	}
	if u.User != nil || u.Fragment != "" {
		return bad("URL %q: a request carries no user info or fragment", r.URL)
	}
	header := http.Header{}
	for _, line := range r.Headers {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok:
			return bad("header %q: want \"name: value\"", line)
		case !httpguts.ValidHeaderFieldName(name):
			return bad("header %q: %q is not a valid header name", line, name)
		case !httpguts.ValidHeaderFieldValue(value):
			return bad("header %q: the value has characters a header cannot carry", line)
		case strings.EqualFold(name, "host"):
			return bad("header %q: the Host is the URL's hostname; put it in the URL", line)
		}
		header.Add(name, value)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	req = emissary.Request{Method: method, Authority: emissary.Authority(u.Host), Path: path,
		RawQuery: u.RawQuery, Header: header, Secure: u.Scheme == "https"}
	view = RequestView{Method: method, Scheme: u.Scheme, Host: req.Authority, Path: path, Query: u.RawQuery}
	if len(header) > 0 {
		view.Headers = map[string][]string{}
		for k, vs := range header {
			view.Headers[strings.ToLower(textproto.CanonicalMIMEHeaderKey(k))] = vs
		}
	}
	return req, view, nil
}

// SampleURL is the URL of a request m takes, as far as its hostname and
// prefix say, for a link that explains it: an exact hostname as it is; for
// a glob (or none), the first Host of the installation that binds m and
// has an exact hostname the glob matches, else a name the glob matches;
// the prefix as the path, "/" for a prefix_regex (a regex has no one path
// to show).
func SampleURL(in Input, m *ambv3.Mapping) string {
	glob := cmp.Or(m.Spec.Hostname, "*")
	host := glob
	if strings.Contains(glob, "*") {
		host = ""
		for _, h := range emissary.Hosts(emissary.Input{Hosts: in.Snapshot.Hosts, AmbassadorID: in.Snapshot.AmbassadorID}) {
			if !strings.Contains(h.Hostname, "*") && h.Binds(m) && emissary.HostglobMatches(glob, h.Hostname) {
				host = h.Hostname
				break
			}
		}
	}
	switch {
	case host != "":
	case glob == "*":
		host = "example.com"
	case strings.HasPrefix(glob, "*"):
		host = "www" + strings.TrimPrefix(glob, "*")
	default:
		host = strings.TrimSuffix(glob, "*") + "com"
	}
	path := m.Spec.Prefix
	if m.Spec.PrefixRegex != nil && *m.Spec.PrefixRegex || !strings.HasPrefix(path, "/") {
		path = "/"
	}
	return (&url.URL{Scheme: "http", Host: host, Path: path}).String()
}
