package cli

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// LocalScheme has the types the commands read and write in the local
// cluster: client-go's, CustomResourceDefinitions and the Link.
func LocalScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(crossmapv1.AddToScheme(s))
	return s
}
