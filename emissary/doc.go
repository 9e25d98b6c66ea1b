// Package emissary is the translate stage's model of Emissary-ingress 3.10:
// how Emissary reads the Mappings and Hosts that exist, which the route
// role (mapper), the status model and the dev edge (edge) all share, so
// that the weights crossmap budgets, the shares /status reports and the
// routes the dev edge serves come from one reading of the same rules.
//
// It holds, each with the place in Emissary's python/ambassador tree it
// follows:
//
//   - group identity: the header and query parameter matches Emissary
//     derives from a Mapping (ir/irhttpmapping.py, IRHTTPMapping.__init__)
//     and the group ID it hashes them into (_group_id), see GroupKey;
//   - the rules of a group: the core fields its members must agree on, one
//     host_redirect Mapping or none, shadows kept out of the weighting
//     (ir/irhttpmappinggroup.py, add_mapping);
//   - weight normalisation: running totals, the remainder, overflow
//     (ir/irbasemappinggroup.py, normalize_weights_in_mappings), see
//     Shares;
//   - Host binding: mappingSelector, hostname globs, ambassador_id
//     (ir/irhost.py, matches_httpgroup; ir/irutils.py), see Host;
//   - precedence and route order (ir/irhttpmapping.py, _route_weight;
//     ir/ir.py, ordered_groups), see RouteWeight;
//   - how Envoy matches a request against the routes Emissary writes, and
//     picks the virtual host (envoy/v3/v3route.py; Envoy's
//     RouteMatcher::findVirtualHost), see Request, RouteMatches and
//     VirtualHosts: the dev edge routes with them and `crossmap explain`
//     explains with them, so the two cannot disagree.
//
// Groups puts them together: from the Mappings and Hosts of one Emissary
// installation it computes every group, in route order, with every
// member's share of requests.
//
// The package is pure: values in, values out, no clients, clocks or logs.
// It imports neither client-go nor controller-runtime (mapper/purity_test.go).
package emissary
