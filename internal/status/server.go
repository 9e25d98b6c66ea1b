package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crossmap/crossmap/mapper"
)

// Server serves the model over HTTP. It is a manager Runnable that runs on
// every replica, leader or not, so that operators can ask any of them.
type Server struct {
	Addr  string
	Model *Model
	// Ready reports whether the controller is ready; /readyz serves it.
	Ready func() error
	// Gatherer is what /metrics serves: controller-runtime's registry with
	// crossmap's series on it. Without one, /metrics is a 404.
	Gatherer prometheus.Gatherer
	// Now is the clock the page's "generated at" and ages read; default
	// time.Now.
	Now func() time.Time

	mu       sync.Mutex
	listener net.Listener
}

// Handler returns the status API's routes.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	// Every route answers GET and HEAD only: the API reads. (A fresh
	// argument list each time: mux upper-cases the slice it is given in
	// place, so a shared one would be a data race between Handler calls.)
	get := func(path string, h http.HandlerFunc) { r.HandleFunc(path, h).Methods(http.MethodGet, http.MethodHead) }
	get("/", s.getPage)
	get("/status", s.getStatus)
	get("/status/links", s.getLinks)
	get("/status/links/{name}", s.getLinkByName)
	get("/status/links/{namespace}/{name}", s.getLink)
	get("/status/services", s.getServices)
	get("/status/services/{namespace}/{name}", s.getService)
	get("/status/trust", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.view().Trust) })
	get("/status/routes", s.getRoutes)
	get("/status/routes/{namespace}/{name}", s.getRoute)
	get("/explain", s.getExplain)
	get("/status/exports", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.view().Exports) })
	get("/status/exports/{namespace}/{name}", s.getExport)
	get("/status/imports", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.view().Imports) })
	get("/status/imports/{namespace}/{name}", s.getImport)
	get("/metrics", s.getMetrics())
	get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	get("/readyz", s.getReady)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no such path: "+req.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", strings.Join(allowed(r, req), ", "))
		writeError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed on "+req.URL.Path)
	})
	return r
}

// allowed lists the methods some route of r answers on req's path, for the
// Allow header of a 405.
func allowed(r *mux.Router, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		probe := req.Clone(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if r.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// Listen binds the address, so that callers (and tests) learn the port before
// Start serves on it.
func (s *Server) Listen() (net.Addr, error) {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listener = l
	return l.Addr(), nil
}

// ListenAddr is the address the server listens on, or nil before Listen (or
// Start, which listens when Listen was not called). It is safe to call while
// Start runs, so that a test can wait for the port the manager's Start bound.
func (s *Server) ListenAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.ListenAddr() == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	l := s.listener
	s.mu.Unlock()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logr.FromContextOrDiscard(ctx).Info("Started status API", "address", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NeedLeaderElection is false: every replica serves its view.
func (s *Server) NeedLeaderElection() bool { return false }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// view is the model's View with every list non-nil, so that the API says
// [] where there is nothing, never null.
func (s *Server) view() View {
	v := s.Model.View()
	for i := range v.Links {
		if v.Links[i].MirroredServices == nil {
			v.Links[i].MirroredServices = []string{}
		}
	}
	for i := range v.Routes {
		if v.Routes[i].Backends == nil {
			v.Routes[i].Backends = []mapper.RouteBackend{}
		}
	}
	return v
}

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view())
}

func (s *Server) getLinks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view().Links)
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request) {
	if l, ok := byKey(w, r, s.view().Links, "Link"); ok {
		writeJSON(w, http.StatusOK, l)
	}
}

// byKey finds the item the request's {namespace}/{name} names, or
// answers 404 naming what was asked for ("no Link ns/name") and returns
// false.
func byKey[T interface{ Key() string }](w http.ResponseWriter, r *http.Request, items []T, what string) (T, bool) {
	vars := mux.Vars(r)
	key := vars["namespace"] + "/" + vars["name"]
	for _, it := range items {
		if it.Key() == key {
			return it, true
		}
	}
	writeError(w, http.StatusNotFound, "no "+what+" "+key)
	var zero T
	return zero, false
}

// ambiguousError is the body of a 409: the name is a Link in several
// namespaces, listed so that the caller can ask for one.
type ambiguousError struct {
	Error      string   `json:"error"`
	Code       int      `json:"code"`
	Namespaces []string `json:"namespaces"`
}

// getLinkByName finds a Link by name alone, which is what operators type:
// Links usually live in one namespace.
func (s *Server) getLinkByName(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var found []Link
	for _, l := range s.view().Links {
		if l.Name == name {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		writeError(w, http.StatusNotFound, "no Link named "+name)
	case 1:
		writeJSON(w, http.StatusOK, found[0])
	default:
		namespaces := make([]string, 0, len(found))
		for _, l := range found {
			namespaces = append(namespaces, l.Namespace)
		}
		writeJSON(w, http.StatusConflict, ambiguousError{
			Error: fmt.Sprintf("Link name %s is in several namespaces (%s): ask for /status/links/{namespace}/%s",
				name, strings.Join(namespaces, ", "), name),
			Code:       http.StatusConflict,
			Namespaces: namespaces,
		})
	}
}

func (s *Server) getServices(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view().Services)
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	if svc, ok := byKey(w, r, s.view().Services, "mirrored Service"); ok {
		writeJSON(w, http.StatusOK, svc)
	}
}

// routeView is a route with the problems that concern it.
type routeView struct {
	Route
	Problems []Problem `json:"problems"`
}

func (s *Server) getRoutes(w http.ResponseWriter, _ *http.Request) {
	v := s.view()
	out := make([]routeView, 0, len(v.Routes))
	for _, r := range v.Routes {
		out = append(out, routeView{Route: r, Problems: problemsOf(v, r.Key())})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRoute(w http.ResponseWriter, r *http.Request) {
	v := s.view()
	if rt, ok := byKey(w, r, v.Routes, "annotated Mapping"); ok {
		writeJSON(w, http.StatusOK, routeView{Route: rt, Problems: problemsOf(v, rt.Key())})
	}
}

// problemsOf picks the problems about the Mapping key.
func problemsOf(v View, key string) []Problem {
	out := []Problem{}
	for _, p := range v.Problems {
		if p.Object.Kind == "Mapping" && p.Object.Namespace+"/"+p.Object.Name == key {
			out = append(out, p)
		}
	}
	return out
}

// getMetrics serves the Gatherer in Prometheus' text format, so that the
// status port is the only one to expose (issue #4).
func (s *Server) getMetrics() http.HandlerFunc {
	if s.Gatherer == nil {
		return func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "no metrics: this server has no Gatherer")
		}
	}
	return promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
}

func (s *Server) getReady(w http.ResponseWriter, _ *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": msg, "code": code})
}
