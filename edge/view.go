package edge

import "github.com/crossmap/crossmap/emissary"

// A read-only view of a Table in Envoy's terms, for tests that hold the
// edge against Emissary's own compiler (internal/emissarytest). The proxy
// does not use it.

// VirtualHostView is one virtual host of the table: a Host, with the routes
// of the groups it accepts in the order the edge tries them.
type VirtualHostView struct {
	// Host is the Host's namespace/name, or "default-host" when the
	// installation has no Host and the edge stands in Emissary's default.
	Host     string
	Hostname string
	Routes   []VirtualHostRoute
}

// VirtualHostRoute is one route: one Mapping of a group, or one of Emissary's own
// routes (Builtin).
type VirtualHostRoute struct {
	Mapping string // namespace/name; "" for a Builtin
	Builtin string // BuiltinReady or BuiltinAlive
	Group   string // the group's ID text (emissary.GroupKey)
	// PathKind is "prefix", "path" (prefix_exact) or "regex"
	// (prefix_regex); Path is the Mapping's prefix.
	PathKind      string
	Path          string
	CaseSensitive bool
	Headers       []MatchView // :authority and :method included, as Envoy has them
	Query         []MatchView
	// Numerator is the route's cumulative runtime fraction in percent.
	Numerator     int
	Backend       string // "namespace/name:port"; "" when the service is no Service
	HostRewrite   string
	PrefixRewrite string // "" for none
	TLSContext    string // the Origin's Context; "" without tls
	AddedHeaders  []AddedHeader
	// ResponseHeaders are the group's add_response_headers.
	ResponseHeaders []AddedHeader
}

// MatchView is a header or query parameter matcher: Kind is exact, regex,
// prefix or suffix.
type MatchView struct {
	Name, Kind, Value string
}

// VirtualHosts returns the table's virtual hosts, one per Host hostname, in
// Host (namespace/name) order.
func (t *Table) VirtualHosts() []VirtualHostView {
	if t == nil {
		return nil
	}
	out := make([]VirtualHostView, 0, len(t.hosts))
	for _, h := range t.hosts {
		vh := VirtualHostView{Host: h.name, Hostname: h.hostname, Routes: make([]VirtualHostRoute, 0, len(h.routes))}
		for _, rt := range h.routes {
			v := VirtualHostRoute{
				Mapping:         rt.mapping,
				Builtin:         rt.group.Builtin,
				Group:           rt.group.Key,
				PathKind:        rt.match.Path.Kind.String(),
				Path:            rt.match.Path.Value,
				CaseSensitive:   rt.match.Path.CaseSensitive,
				Headers:         matchViews(rt.match.Headers),
				Query:           matchViews(rt.match.Query),
				Numerator:       rt.numerator,
				Backend:         rt.backend.key,
				HostRewrite:     rt.hostRw,
				PrefixRewrite:   rt.rewrite,
				AddedHeaders:    append([]AddedHeader(nil), rt.addHeaders...),
				ResponseHeaders: append([]AddedHeader(nil), rt.respHeaders...),
			}
			if rt.origin != nil {
				v.TLSContext = rt.origin.Context
			}
			vh.Routes = append(vh.Routes, v)
		}
		out = append(out, vh)
	}
	return out
}

func matchViews(ms []emissary.ValueMatch) []MatchView {
	var out []MatchView
	for _, m := range ms {
		out = append(out, MatchView{Name: m.Name, Kind: m.Kind.String(), Value: m.Value})
	}
	return out
}
