// Package controller wires crossmap's pipeline together inside a
// controller-runtime manager: it reads the caches (watch), builds plain
// snapshots, calls the pure mapper (translate, diff), applies the plan with
// server-side apply (apply), and records the outcome in Link status, Events,
// logs and the status model (status).
//
// Four reconcilers share that shape, one per role:
//   - the export role (ExportReconciler): gateway Mappings and Host for this
//     cluster's exported Services;
//   - the import role (LinkReconciler): one reconcile per Link, mirroring the
//     remote cluster's exported Services;
//   - the route role (RouteReconciler): sibling Mappings, dev routes and
//     TrafficSplits for annotated Mappings, and the status of each route
//     with its Emissary group in force (mapper.Routes, package emissary);
//   - the trust role (TrustReconciler): the certificates crossmap issues
//     itself from the shared trust anchor, and the TLSContexts that use them.
//
// Each recomputes everything from the caches on every call and never
// branches on what kind of event woke it.
package controller
