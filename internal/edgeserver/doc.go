// Package edgeserver runs the dev edge: it watches one cluster's Mappings,
// Hosts, TLSContexts, Secrets, Services and EndpointSlices (watch), rebuilds
// the edge's routing table from them on every change (translate, in
// edge), swaps it into the proxy, and reports what the edge does
// not honour and how its TLS handshakes fail (status). It is the data plane
// beside crossmap's pipeline, for dev clusters, the demo and the end-to-end
// tests; production uses Emissary.
package edgeserver
