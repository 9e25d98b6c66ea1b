// Package edge is the data plane beside the pipeline: the dev edge's routing
// table, built from the same Emissary objects crossmap writes, and the
// reverse proxy that serves it.
//
// Emissary-ingress (Envoy) is the production data plane. For dev clusters,
// the demo and the end-to-end tests, `crossmap edge` stands in for it: Build
// turns a snapshot of Mappings, Hosts, TLSContexts, Secrets, Services and
// EndpointSlices into a Table that routes the way Emissary 3.10 would, and
// Proxy serves a Table with the standard library's reverse proxy, on a
// listener (Proxy.Listener) that takes TLS and cleartext on one port.
//
// Build is pure: it takes values, returns values, and keeps no state. The
// caller (internal/edgeserver) watches the cluster, rebuilds the table on
// every change, swaps it into the Proxy, and logs the Problems. The Proxy
// reads the current table at each TLS handshake and each request, so a
// changed Secret takes effect with the next handshake, while connections
// and requests under way carry on with what they started with.
//
// What "the way Emissary would" means, and where each rule comes from
// (paths are in Emissary 3.10's python/ambassador tree). Emissary's rules
// for reading Mappings and Hosts are package emissary's, which the route
// role and the status model share; the edge adds the data plane:
//
//   - Mappings group, and groups are weighted and ordered, as
//     emissary.Groups says: Emissary's group ID (ir/irhttpmapping.py,
//     _group_id), the cumulative weights of ir/irbasemappinggroup.py
//     (normalize_weights_in_mappings), and the route weight, highest first
//     (_route_weight; ir/ir.py ordered_groups). A request takes the first
//     route that matches, as in Envoy.
//   - Each Host is an Envoy virtual host; a group's routes go to the Hosts
//     that accept it (emissary.Host.Accepts: ir/irhost.py
//     matches_httpgroup), and a request is routed within the virtual host
//     its Host header selects.
//   - Route matches, rewrites and timeouts are those envoy/v3/v3route.py
//     writes: prefix, path or safe_regex match, header and query parameter
//     matchers, runtime_fraction, prefix_rewrite, host_rewrite_literal, and
//     a 3000ms timeout.
//   - The listener is an Emissary Listener with protocol HTTPS and
//     securityModel XFP: TLS and cleartext on one port (Envoy's
//     tls_inspector; envoy/v3/v3listener.py), X-Forwarded-Proto set from
//     the connection (the Module's use_remote_address defaults to true).
//   - A Host with a tlsSecret terminates TLS (ir/irhost.py IRHost.setup):
//     it serves the Secret's tls.crt and tls.key, and takes its client
//     certificate policy from its tls, or the TLSContext its tlsContext
//     names, or a TLSContext called <host>-context (ca_secret's tls.crt is
//     the trust anchor, cert_required requires a certificate, otherwise one
//     is verified if given; min_tls_version and max_tls_version; Envoy's
//     TLS 1.2 to 1.3 by default: envoy/v3/v3tls.py).
//   - A connection's SNI picks the TLS Host as Envoy matches a filter
//     chain's server_names (V3Listener.finalize_http): exact, then the
//     longest "*." wildcard, then a Host for "*"; none fails the handshake.
//     Over TLS a request reaches only that Host's virtual host.
//   - A cleartext request gets the insecure action of the Host its Host
//     header selects (V3Listener.compute_http_routes, v3route.py
//     V3RouteVariants): Route routes; Redirect (the default) answers 301
//     to https; Reject leaves the virtual host without routes, so Envoy
//     answers 404.
//   - A Mapping's tls names a TLSContext by name, whatever its namespace
//     (ir/ir.py get_tls_context); a name two namespaces use is ambiguous
//     (config/config.py safe_store renames all but the first Emissary
//     loads). The request goes upstream over TLS with the TLSContext's
//     secret as client certificate, ca_secret as trust anchor and sni as
//     SNI, "name.namespace" naming a Secret of another namespace
//     (ir/irtlscontext.py resolve_secret); TLS 1.2 at most by default, as
//     Envoy's upstreams.
//   - Emissary's readiness and liveness Mappings (ir/irambassador.py
//     add_mappings), which every Host takes (ir/irhost.py
//     matches_httpgroup): /ambassador/v0/check_ready and check_alive are
//     routes like any other, answered by the proxy itself.
//
// Where Emissary would carry on with less security than asked for, the
// edge refuses, and reports a Problem: a Mapping whose TLSContext is
// missing, ambiguous, has no ca_secret, or whose Secrets are unusable
// answers 503 (Emissary would originate cleartext, or not verify the
// upstream); a TLS Host whose Secrets are unusable fails its handshakes
// (Emissary would drop the Host). The edge also checks the upstream's
// certificate against the TLSContext's sni, which Envoy as Emissary 3.10
// configures it does not (it verifies the chain only, as the edge does
// for a TLSContext without sni). Failed handshakes are counted by side and
// reason (internal/pki Classify) in Proxy.TLSStatus.
//
// Mapping fields the edge does not implement are reported as Problems, and
// the Mapping is routed without them (shadow and host_redirect Mappings are
// not routed at all); see fields.go for the list.
package edge
