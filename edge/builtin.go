package edge

import (
	"time"

	"github.com/crossmap/crossmap/emissary"
)

// Emissary's own answers on its listeners: the readiness and liveness
// probes (emissary.BuiltinReady and BuiltinAlive). They are groups like the
// others (emissary.Groups), which every Host takes, so a request reaches
// them through a virtual host, over TLS only through the Host its SNI
// selects, in cleartext subject to the Host's insecure action, and a
// Mapping with a longer prefix or a higher precedence can shadow them. The
// Proxy answers them itself.
const (
	BuiltinReady = emissary.BuiltinReady
	BuiltinAlive = emissary.BuiltinAlive
)

// builtinTimeout is the timeout_ms of Emissary's probe Mappings.
const builtinTimeout = 10 * time.Second

// builtinRoute is the one route of a probe group: the path, rewritten to
// itself.
func builtinRoute(g *group) *route {
	matches, _ := emissary.RouteMatches(g.Group) // a prefix and hostname "*": nothing to compile
	return &route{
		group:     g,
		numerator: 100,
		match:     matches[0],
		rewrite:   g.Builtin,
		timeout:   builtinTimeout,
	}
}
