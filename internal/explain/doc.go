// Package explain is part of the status stage: from the snapshot the route
// role last translated (the Mappings and Hosts that exist, the Links'
// health, the Services' ready endpoints) it answers, for one request, what
// Emissary does with it and why. It serves `GET /explain` and `crossmap
// explain`.
//
// It reads Emissary's rules from package emissary only: the groups and
// their shares (emissary.Groups), the virtual host a request's Host header
// selects and the Hosts that take each group (emissary.VirtualHosts,
// emissary.Host.Accepts), and the route matches Envoy evaluates
// (emissary.RouteMatches). The dev edge routes with the same functions, so
// the answer here is where the dev edge sends the request, draw for draw:
// Explain tries every one of Envoy's 100 runtime draws against the routes
// in order, as the edge does for one draw per request.
//
// Like mapper, it is pure: values in, values out, no clients, clocks or
// logs.
package explain
