// Package mcsconformance judges the last stages of crossmap's pipeline (the
// ServiceImports and EndpointSlices that apply writes, and the ServiceExport
// conditions that status sets) with the Multi-Cluster Services API's own
// conformance suite, kubernetes-sigs/mcs-api conformance/, run unchanged
// against two real control planes with crossmap's controllers linked both
// ways.
//
// The suite is somebody else's code and the Go module proxy does not serve
// its module, so it is not copied here: Build compiles it from a clone of
// kubernetes-sigs/mcs-api at a pinned release (SuiteTag), against the
// sigs.k8s.io/mcs-api version crossmap itself builds with. The run is the
// test in this package behind the mcsconformance build tag (make
// mcs-conformance), so that `go test ./...` never counts it as run when the
// clone is not there.
//
// The control planes have no kubelet and no kube-controller-manager. The
// suite's specs about ServiceImports and EndpointSlices only need their
// effects on the API (a Pod reported Running, the EndpointSlice of a
// Service whose Deployment is up, a deleted namespace going away), and
// StandIn writes exactly those for the suite's namespaces and nothing else.
// The specs that exec into pods, send traffic or query clusterset.local DNS
// are not run; the test names each and says why.
package mcsconformance
