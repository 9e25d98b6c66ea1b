// Package e2e drives the whole pipeline, watch to status, as users do: two
// real control planes ("east" and "west", real kube-apiserver and etcd with
// Emissary's CRDs), crossmap controllers running in-process against them, and
// assertions on the state of both clusters. It also holds the benchmarks.
//
// Every test gets its own namespaces, export label and cluster name, so the
// tests share two planes without seeing each other's objects.
package e2e
