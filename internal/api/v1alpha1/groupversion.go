package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the Link.
var GroupVersion = schema.GroupVersion{Group: "crossmap.io", Version: "v1alpha1"}

var (
	// The scheme builder is apimachinery's, not controller-runtime's: the
	// pure core (mapper) imports this package for its labels, and imports
	// no client library (mapper/purity_test.go).
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme registers the crossmap.io/v1alpha1 types with a scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Link{}, &LinkList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
