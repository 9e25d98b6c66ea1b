// Package edge is the data plane beside the pipeline: the dev edge's routing
// table, built from the same Emissary objects crossmap writes, and the
// reverse proxy that serves it.
//
// Emissary-ingress (Envoy) is the production data plane. For dev clusters,
// the demo and the end-to-end tests, `crossmap edge` stands in for it: Build
// turns a snapshot of Mappings, Hosts, Services and EndpointSlices into a
// Table that routes the way Emissary 3.10 would, and Proxy serves a Table
// over HTTP with the standard library's reverse proxy.
//
// Build is pure: it takes values, returns values, and keeps no state. The
// caller (internal/edgeserver) watches the cluster, rebuilds the table on
// every change, swaps it into the Proxy, and logs the Problems.
//
// What "the way Emissary would" means, and where each rule comes from
// (paths are in Emissary 3.10's python/ambassador tree):
//
//   - Mappings group by Emissary's group key (ir/irhttpmapping.py,
//     _group_id); a group's routes split traffic by the cumulative weights
//     of ir/irbasemappinggroup.py, normalize_weights_in_mappings, computed
//     with mapper.Shares.
//   - Groups are ordered by their route weight, highest first
//     (ir/irhttpmapping.py _route_weight; ir/ir.py ordered_groups), and a
//     request takes the first route that matches, as in Envoy.
//   - Each Host is an Envoy virtual host; a group's routes go to the Hosts
//     that accept it (ir/irhost.py matches_httpgroup), and a request is
//     routed within the virtual host its Host header selects.
//   - Route matches, rewrites and timeouts are those envoy/v3/v3route.py
//     writes: prefix, path or safe_regex match, header and query parameter
//     matchers, runtime_fraction, prefix_rewrite, host_rewrite_literal, and
//     a 3000ms timeout.
//
// Mapping fields the edge does not implement are reported as Problems, and
// the Mapping is routed without them (shadow and host_redirect Mappings are
// not routed at all); see fields.go for the list.
package edge
