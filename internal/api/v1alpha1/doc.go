// Package v1alpha1 holds crossmap's own API, the Link, which sits at the very
// start of the pipeline: a Link names a remote cluster and tells the watch
// stage how to reach it, and its status is where the status stage reports back.
//
// +kubebuilder:object:generate=true
// +groupName=crossmap.io
package v1alpha1
