package status

import (
	"errors"
	"net/http"
	"net/url"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"

	"github.com/crossmap/crossmap/internal/explain"
)

// SetRouting records what GET /explain reads: the snapshot the route role
// last translated, this cluster's name and the Links' gateway identities.
// The model keeps the snapshot as given; its objects are the caches', read
// only.
func (m *Model) SetRouting(in explain.Input) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routing = &in
}

// Routing returns what SetRouting last recorded, with the routes the model
// holds now; false before the route role's first reconcile (or without
// the route role).
func (m *Model) Routing() (explain.Input, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.routing == nil {
		return explain.Input{}, false
	}
	in := *m.routing
	in.Routes = make(map[string]explain.Route, len(m.routes))
	for k, r := range m.routes {
		in.Routes[k] = explain.Route{Failover: r.Failover, Held: r.Held, Backends: r.Backends}
	}
	return in, true
}

// getExplain explains one request: GET /explain?url=URL&method=M&header=H
// (header repeated, each "name: value"; method GET by default). Bad input
// is a 400 that says what is wrong, a hostname no Host serves a 404, and a
// 503 until the route role has read the cluster.
func (s *Server) getExplain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := explain.Request{Method: q.Get("method"), URL: q.Get("url"), Headers: q["header"]}
	in, ok := s.Model.Routing()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "nothing to explain yet: the route role has not read the cluster's Mappings (is the controller running with --routes, and is it the leader?)")
		return
	}
	e, err := explain.Explain(in, req)
	switch {
	case errors.Is(err, explain.ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, explain.ErrNoHost):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "explain: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

// explainLinks gives each route of the page a link to /explain with a
// request its Mapping takes, and each dev route one with its header.
func (s *Server) explainLinks(p *page) {
	in, ok := s.Model.Routing()
	if !ok {
		return
	}
	byKey := map[string]*ambv3.Mapping{}
	for _, m := range in.Snapshot.Mappings {
		byKey[m.Namespace+"/"+m.Name] = m
	}
	for i := range p.Routes {
		r := &p.Routes[i]
		m, ok := byKey[r.Key()]
		if !ok {
			continue
		}
		u := explain.SampleURL(in, m)
		r.Explain = explainHref(u, "")
		for j := range r.Backends {
			if b := &r.Backends[j]; b.Dev {
				b.Explain = explainHref(u, b.Header)
			}
		}
	}
}

func explainHref(u, header string) string {
	q := url.Values{"method": {"GET"}, "url": {u}}
	if header != "" {
		q.Set("header", header)
	}
	return "/explain?" + q.Encode()
}
