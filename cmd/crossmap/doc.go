// Command crossmap is the thin entry point to every stage of the pipeline:
// `crossmap controller` runs the watch → translate → diff → apply → status
// loop inside a Kubernetes cluster; `status`, `link` and `check` are the
// operators' view of it, and `version` says which build it is; `edge` runs
// the dev edge data plane beside it; and `crossmap demo` plays the whole
// story on real control planes.
package main
