package testenv

import (
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	mcscrd "sigs.k8s.io/mcs-api/config/crd"
)

// MCSCRDs returns the ServiceExport and ServiceImport CRDs of the
// Multi-Cluster Services API, exactly as the sigs.k8s.io/mcs-api module in
// go.mod embeds them: the version crossmap's types come from is the version
// the test bed serves, and nobody keeps a copy in step by hand.
func MCSCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, doc := range []struct {
		name string
		data []byte
	}{
		{"sigs.k8s.io/mcs-api serviceexports", mcscrd.ServiceExportCRD},
		{"sigs.k8s.io/mcs-api serviceimports", mcscrd.ServiceImportCRD},
	} {
		crds, err := decodeCRDs(doc.data, doc.name)
		if err != nil {
			return nil, fmt.Errorf("load MCS CRDs: %w", err)
		}
		out = append(out, crds...)
	}
	return out, nil
}
