// Package controller wires crossmap's pipeline together inside a
// controller-runtime manager: it reads the caches (watch), builds plain
// snapshots, calls the pure mapper (translate, diff), applies the plan with
// server-side apply (apply), and records the outcome in Link status, Events,
// logs and the status model (status).
//
// Two reconcilers share that shape: the export role (gateway Mappings and
// Host for this cluster's exported Services) and the import role (one
// reconcile per Link, mirroring the remote cluster's exported Services).
// Both recompute everything from the caches on every call and never branch
// on what kind of event woke them.
package controller
