package status

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Server serves the model over HTTP. It is a manager Runnable that runs on
// every replica, leader or not, so that operators can ask any of them.
type Server struct {
	Addr  string
	Model *Model
	// Ready reports whether the controller is ready; /readyz serves it.
	Ready func() error
	// Gatherer is what /metrics serves: controller-runtime's registry with
	// crossmap's series on it.
	Gatherer prometheus.Gatherer

	listener net.Listener
}

// Handler returns the status API's routes.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/status", s.getStatus).Methods(http.MethodGet)
	r.HandleFunc("/status/links", s.getLinks).Methods(http.MethodGet)
	r.HandleFunc("/status/links/{namespace}/{name}", s.getLink).Methods(http.MethodGet)
	r.HandleFunc("/status/routes", s.getRoutes).Methods(http.MethodGet)
	r.HandleFunc("/status/routes/{namespace}/{name}", s.getRoute).Methods(http.MethodGet)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.getReady).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no such path: "+req.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed on "+req.URL.Path)
	})
	return r
}

// Listen binds the address, so that callers (and tests) learn the port before
// Start serves on it.
func (s *Server) Listen() (net.Addr, error) {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	s.listener = l
	return l.Addr(), nil
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.listener == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logr.FromContextOrDiscard(ctx).Info("Started status API", "address", s.listener.Addr().String())
	if err := srv.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NeedLeaderElection is false: every replica serves its view.
func (s *Server) NeedLeaderElection() bool { return false }

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Model.View())
}

func (s *Server) getLinks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Model.View().Links)
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	key := vars["namespace"] + "/" + vars["name"]
	for _, l := range s.Model.View().Links {
		if l.Key() == key {
			writeJSON(w, http.StatusOK, l)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no Link "+key)
}

// routeView is a route with the problems that concern it.
type routeView struct {
	Route
	Problems []Problem `json:"problems"`
}

func (s *Server) getRoutes(w http.ResponseWriter, _ *http.Request) {
	v := s.Model.View()
	out := make([]routeView, 0, len(v.Routes))
	for _, r := range v.Routes {
		out = append(out, routeView{Route: r, Problems: problemsOf(v, r.Key())})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRoute(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	key := vars["namespace"] + "/" + vars["name"]
	v := s.Model.View()
	for _, rt := range v.Routes {
		if rt.Key() == key {
			writeJSON(w, http.StatusOK, routeView{Route: rt, Problems: problemsOf(v, key)})
			return
		}
	}
	writeError(w, http.StatusNotFound, "no annotated Mapping "+key)
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
