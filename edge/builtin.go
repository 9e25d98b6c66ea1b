package edge

import (
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// Emissary's own answers on its listeners: the readiness and liveness
// probes. Emissary adds a Mapping for each (ir/irambassador.py,
// IRAmbassador.add_mappings: prefix and rewrite the path, hostname "*",
// timeout_ms 10000, service diagd at 127.0.0.1:8877), which every Host
// takes (ir/irhost.py, matches_httpgroup), so they are routes like the
// others: a request reaches them through a virtual host, over TLS only
// through the Host its SNI selects, in cleartext subject to the Host's
// insecure action, and a Mapping with a longer prefix or a higher
// precedence can shadow them.
const (
	BuiltinReady = "/ambassador/v0/check_ready"
	BuiltinAlive = "/ambassador/v0/check_alive"
)

// builtinTimeout is the timeout_ms of Emissary's probe Mappings.
const builtinTimeout = 10 * time.Second

var builtinNames = map[string]string{
	BuiltinReady: "internal_readiness_probe_mapping",
	BuiltinAlive: "internal_liveness_probe_mapping",
}

// addBuiltin adds the group of one of Emissary's probe Mappings. It is
// kept apart from the user's groups: the Proxy answers it itself.
func (b *builder) addBuiltin(path string) {
	sp := &ambv3.MappingSpec{Prefix: path, Hostname: "*"}
	hdrs, host, _, _ := matchHeaders(sp)
	headers, _ := valueMatches(hdrs, true) // hostname "*" matches everything
	g := &group{
		key:      "builtin " + path,
		weight:   newRouteWeight(sp, hdrs, nil),
		host:     host,
		headers:  headers,
		labels:   map[string]string{},
		mappings: []string{builtinNames[path]},
		builtin:  path,
	}
	g.routes = []*route{{
		group:     g,
		numerator: 100,
		path:      pathMatch{kind: pathPrefix, value: path, caseSensitive: true},
		rewrite:   path,
		timeout:   builtinTimeout,
	}}
	b.order = append(b.order, g)
}
