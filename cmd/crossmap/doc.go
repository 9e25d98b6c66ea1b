// Command crossmap is the thin entry point to every stage of the pipeline:
// `crossmap controller` runs the watch → translate → diff → apply → status
// loop inside a Kubernetes cluster, and `crossmap demo` runs the local
// two-cluster demo on real control planes.
package main
