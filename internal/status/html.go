package status

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/crossmap/crossmap/mapper"
)

// pageTemplate is the page GET / serves: the model for people, rendered on
// the server with no script and no asset from elsewhere, so that it works
// wherever the status port is reachable. html/template escapes every value.
//
//go:embed page.html.tmpl
var pageTemplate string

// refreshSeconds is how often the page reloads itself.
const refreshSeconds = 10

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"clock": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short": shortDuration,
}).Parse(pageTemplate))

// tlsBadge is how the page shows a Link's mutual TLS.
func tlsBadge(t *LinkTLS) (health, label string) {
	switch {
	case t == nil:
		return healthNone, "n/a"
	case t.Mode != "mutual":
		return healthWarn, "cleartext"
	case t.Verified:
		return healthOK, "verified"
	case t.Reason == "" || t.Reason == "NotProbed":
		return healthNone, "not checked"
	}
	return healthBad, t.Reason
}

// shortDuration rounds a duration the model holds as text to three
// significant figures or so ("34.113142ms" reads 34.1ms), and leaves any
// other text as it is.
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	for _, unit := range []time.Duration{time.Hour, time.Minute, time.Second, time.Millisecond, time.Microsecond} {
		if d >= unit {
			if unit >= time.Minute {
				return d.Round(time.Second).String()
			}
			return d.Round(unit / 10).String()
		}
	}
	return d.String()
}

// Health classes: the colour and label a row or badge gets.
const (
	healthOK   = "ok"
	healthWarn = "warn"
	healthBad  = "bad"
	healthNone = "none"
)

// page is what the template renders: the View, with the verdicts a reader
// needs worked out here rather than in the template.
type page struct {
	Generated time.Time
	Refresh   int
	Links     []pageLink
	Routes    []pageRoute
	Services  []pageService
	Problems  []pageProblem
	Trust     Trust
	Exports   []pageExport
	Imports   []pageImport
	// HealthyLinks counts the Links whose health is ok; HeldRoutes the
	// routes a problem holds.
	HealthyLinks, HeldRoutes, ReadyServices int
	// ConflictingExports counts the exports in conflict, InvalidExports
	// those that are not Valid; ReadyImports the imports with a ready
	// endpoint.
	ConflictingExports, InvalidExports, ReadyImports int
}

type pageLink struct {
	Link
	Health, HealthLabel   string
	Gateway, GatewayLabel string
	// TLS and TLSLabel are the mutual TLS badge: verified, the reason a
	// handshake failed, cleartext, or not checked.
	TLS, TLSLabel string
}

type pageRoute struct {
	Route
	Health   string
	Backends []pageBackend
	// Members are the Emissary group in force.
	Members  []pageMember
	Problems []pageProblem
	// Explain is the /explain link of a request the route takes;
	// "" when the model has nothing to explain with.
	Explain string
}

type pageMember struct {
	mapper.GroupMember
	// Weight is the weight field as text, "–" for none; Configured the
	// share crossmap configured, "–" when it configures none.
	Weight, Configured string
	// SharePct is the share clamped to 0-100, for the bar; Differs is
	// true when the share is not what crossmap configured.
	SharePct int
	Differs  bool
}

type pageBackend struct {
	mapper.RouteBackend
	// Name is the cluster, or "local".
	Name string
	// Dev is true for a dev route: a header selects it, it has no weight.
	Dev bool
	// ConfiguredPct and EffectivePct are the weights clamped to 0-100,
	// for the bar.
	ConfiguredPct, EffectivePct int
	// Differs is true when health moved the effective weight.
	Differs bool
	// Explain is, for a dev route, the /explain link of a request with
	// its header.
	Explain string
}

type pageService struct {
	Service
	Health string
}

type pageProblem struct {
	Problem
	// Age is how long the problem has been there, in whole seconds.
	Age time.Duration
}

func newPage(v View, now time.Time) page {
	p := page{Generated: now, Refresh: refreshSeconds, Trust: v.Trust}
	for _, l := range v.Links {
		pl := pageLink{Link: l, Health: healthOK, HealthLabel: "healthy", Gateway: healthOK, GatewayLabel: "alive"}
		pl.TLS, pl.TLSLabel = tlsBadge(l.TLS)
		switch {
		case !l.GatewayProbed:
			pl.Gateway, pl.GatewayLabel = healthNone, "not probed"
		case !l.GatewayAlive:
			pl.Gateway, pl.GatewayLabel = healthBad, "down"
		}
		switch {
		case !l.RemoteReachable:
			pl.Health, pl.HealthLabel = healthBad, "unreachable"
		case pl.Gateway == healthBad:
			pl.Health, pl.HealthLabel = healthBad, "gateway down"
		case l.LastError != "":
			pl.Health, pl.HealthLabel = healthWarn, "error"
		default:
			p.HealthyLinks++
		}
		p.Links = append(p.Links, pl)
	}
	for _, r := range v.Routes {
		pr := pageRoute{Route: r, Health: healthOK}
		for _, b := range r.Backends {
			pb := pageBackend{RouteBackend: b, Name: b.Cluster, Dev: b.Header != "",
				ConfiguredPct: percent(b.Configured), EffectivePct: percent(b.Effective),
				Differs: b.Header == "" && b.Configured != b.Effective}
			if pb.Name == "" {
				pb.Name = "local"
			}
			if pb.Differs || !b.Healthy {
				pr.Health = healthWarn
			}
			pr.Backends = append(pr.Backends, pb)
		}
		if r.Group != nil {
			for _, m := range r.Group.Members {
				pm := pageMember{GroupMember: m, Weight: "–", Configured: "–", SharePct: percent(m.Share)}
				if m.Weight != nil {
					pm.Weight = strconv.Itoa(*m.Weight)
				}
				if m.Configured != nil {
					pm.Configured = strconv.Itoa(*m.Configured)
					pm.Differs = *m.Configured != m.Share
				}
				pr.Members = append(pr.Members, pm)
			}
		}
		for _, prob := range problemsOf(v, r.Key()) {
			pr.Problems = append(pr.Problems, pageProblem{Problem: prob, Age: age(now, prob.Since)})
		}
		if r.Held || len(pr.Problems) > 0 {
			pr.Health = healthBad
			p.HeldRoutes += btoi(r.Held)
		}
		p.Routes = append(p.Routes, pr)
	}
	for _, s := range v.Services {
		ps := pageService{Service: s, Health: healthOK}
		if !s.Ready {
			ps.Health = healthBad
		} else {
			p.ReadyServices++
		}
		p.Services = append(p.Services, ps)
	}
	for _, prob := range v.Problems {
		p.Problems = append(p.Problems, pageProblem{Problem: prob, Age: age(now, prob.Since)})
	}
	for _, e := range v.Exports {
		pe := newPageExport(e)
		p.ConflictingExports += btoi(pe.Conflict.Class == healthWarn)
		p.InvalidExports += btoi(pe.Valid.Class == healthBad)
		p.Exports = append(p.Exports, pe)
	}
	for _, i := range v.Imports {
		pi := newPageImport(i)
		p.ReadyImports += btoi(pi.Health == healthOK)
		p.Imports = append(p.Imports, pi)
	}
	return p
}

func percent(w int) int { return max(0, min(100, w)) }

func age(now, since time.Time) time.Duration {
	return max(0, now.Sub(since)).Truncate(time.Second)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// getPage serves the page. It renders into a buffer first, so that a
// template error is a clean 500 rather than half a page.
func (s *Server) getPage(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	p := newPage(s.view(), s.now())
	s.explainLinks(&p)
	if err := pageTmpl.Execute(&buf, p); err != nil {
		writeError(w, http.StatusInternalServerError, "render page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
