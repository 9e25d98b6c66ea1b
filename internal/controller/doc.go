// Package controller wires crossmap's pipeline together inside a
// controller-runtime manager: it reads the caches (watch), builds plain
// snapshots, calls the pure mapper (translate, diff), applies the plan with
// server-side apply (apply), and records the outcome in Link status, Events,
// logs and the status model (status).
//
// Five reconcilers share that shape, one per role:
//   - the export role (ExportReconciler): gateway Mappings and Host for this
//     cluster's exported Services;
//   - the import role (LinkReconciler): one reconcile per Link, mirroring the
//     remote cluster's exported Services;
//   - the route role (RouteReconciler): sibling Mappings, dev routes and
//     TrafficSplits for annotated Mappings, and the status of each route
//     with its Emissary group in force (mapper.Routes, package emissary);
//   - the MCS role (MCSReconciler, --mcs): ServiceImports, their derived
//     Services and EndpointSlices from this cluster's ServiceExports and
//     every linked cluster's (through the import role's remote Watchers),
//     and the KEP-1645 conditions of this cluster's ServiceExports;
//   - the trust role (TrustReconciler): the certificates crossmap issues
//     itself from the shared trust anchor, and the TLSContexts that use them.
//
// Each recomputes everything from the caches on every call and never
// branches on what kind of event woke it.
package controller
