// Package mapper is the translate and diff stages of crossmap's pipeline
// (watch → snapshot → translate → diff → apply → status).
//
// It is pure: a Snapshot goes in and desired objects, Problems and a Plan come
// out. Nothing here talks to an API server, reads the clock, logs or counts;
// the controller in internal/controller does all of that around it. That is
// what lets every rule below be table- and golden-tested, and what makes "a
// reconcile with nothing changed writes nothing" a property of Diff rather
// than of luck.
//
// The translations are:
//   - Export: exported local Services → gateway Mappings and one gateway Host
//     in the same cluster, so the cluster's Emissary serves other clusters.
//   - Import: a Link's remote exported Services and EndpointSlices → local
//     mirror Services (<svc>-<cluster>) and EndpointSlices.
//   - Routes: annotated Mappings → sibling Mappings (one per remote
//     backend), dev routes and TrafficSplits, with weights budgeted by
//     Emissary's own rules (package emissary: groups, Shares) and moved by
//     health (Effective), and each route's Emissary group in force.
//   - MCS: every cluster's ServiceExports (Multi-Cluster Services,
//     KEP-1645), this cluster's and the linked ones', merged by the KEP's
//     conflict rules → ServiceImports, the derived Services holding their
//     clusterset IPs, one EndpointSlice set per source cluster, and the
//     conditions of this cluster's ServiceExports.
//
// Diff compares desired objects against what exists and returns a Plan.
package mapper
