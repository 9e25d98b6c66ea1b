package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the API group and version of the Link.
var GroupVersion = schema.GroupVersion{Group: "crossmap.io", Version: "v1alpha1"}

var (
	schemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme registers the crossmap.io/v1alpha1 types with a scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func init() {
	schemeBuilder.Register(&Link{}, &LinkList{})
}

// Ensure the scheme helper keeps the runtime import honest for callers that
// build their own scheme.
var _ runtime.Object = &Link{}
