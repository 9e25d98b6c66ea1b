// Package testenv is the test bed under the whole pipeline: it starts real
// control planes (kube-apiserver and etcd under controller-runtime's envtest)
// for the integration tests, the end-to-end tests and the demo, so that every
// stage from watch to status runs against real API servers rather than a fake
// client.
//
// Start brings up one plane per cluster name ("east", "west", ...), each with
// Emissary's CRDs (served as getambassador.io/v3alpha1, without Emissary's
// conversion webhook) and crossmap's own CRDs from manifests/crd installed.
// A Plane hands out admin clients and per-user kubeconfigs, including the
// read-only credentials a Link uses, and can stop and restart its API server
// alone to play "the remote API server went away and came back". Each API
// server keeps an audit log of the writes of users in AuditedGroup, for the
// benchmarks to count a controller's writes.
//
// The binaries come from `make tools` (tools/build.sh), which builds them from
// the Go module proxy: this machine has no Docker and setup-envtest cannot
// download. The package is a plain library, not a _test package, because the
// demo command uses it too; it therefore never imports "testing".
package testenv
