package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Roles, as they are named in errors, checks and the README.
const (
	RoleExport = "export"
	RoleImport = "import"
	RoleRoute  = "route"
	RoleMCS    = "mcs"
)

// Install commands of the CRDs the roles need. EmissaryCRDInstall is
// Emissary-ingress 3.10's own; crossmap's CRDs are in this repository.
const (
	EmissaryCRDInstall = "install the CRDs of Emissary-ingress 3.x: kubectl apply -f https://app.getambassador.io/yaml/emissary/3.10.0/emissary-crds.yaml (and run Emissary's apiext conversion webhook, which they need)"
	LinkCRDInstall     = "install crossmap's CRDs: kubectl apply -k manifests/crd"
	MCSCRDInstall      = "install the Multi-Cluster Services CRDs (sigs.k8s.io/mcs-api): kubectl apply --server-side -k manifests/mcs, unless the cluster has them from elsewhere"
	SplitCRDInstall    = "kubectl apply -f manifests/crd/split.smi-spec.io_trafficsplits.yaml, if you want SMI TrafficSplits"
)

// CRD is a custom resource kind a role reads or writes, which the cluster
// must serve.
type CRD struct {
	// Name is the CRD's object name, <plural>.<group>.
	Name string
	// Plural is the resource as the API server's discovery lists it.
	Plural string
	// Kind is the kind crossmap uses.
	Kind string
	// Group is the API group; Versions are the versions crossmap can use,
	// in order of preference (one must be served).
	Group    string
	Versions []string
	// Install says how to install it.
	Install string
	// Optional is set for a CRD only one feature of the role needs; Note
	// says which. The role starts without it.
	Optional bool
	Note     string
}

// GroupVersionKinds are the kinds crossmap may use, one per version.
func (c CRD) GroupVersionKinds() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(c.Versions))
	for _, v := range c.Versions {
		out = append(out, schema.GroupVersionKind{Group: c.Group, Version: v, Kind: c.Kind})
	}
	return out
}

// The CRDs some role needs.
var (
	LinkCRD = CRD{Name: "links." + crossmapv1.GroupVersion.Group, Plural: "links", Kind: "Link",
		Group: crossmapv1.GroupVersion.Group, Versions: []string{crossmapv1.GroupVersion.Version}, Install: LinkCRDInstall}
	MappingCRD       = emissaryCRD("mappings", "Mapping")
	HostCRD          = emissaryCRD("hosts", "Host")
	TLSContextCRD    = emissaryCRD("tlscontexts", "TLSContext")
	ServiceExportCRD = CRD{Name: mcsv1beta1.ServiceExportFullName, Plural: mcsv1beta1.ServiceExportPluralName, Kind: mcsv1beta1.ServiceExportKindName,
		Group: mcsv1beta1.GroupName, Versions: []string{mcsv1beta1.GroupVersion.Version}, Install: MCSCRDInstall}
	ServiceImportCRD = CRD{Name: mcsv1beta1.ServiceImportFullName, Plural: mcsv1beta1.ServiceImportPluralName, Kind: mcsv1beta1.ServiceImportKindName,
		Group: mcsv1beta1.GroupName, Versions: []string{mcsv1beta1.GroupVersion.Version}, Install: MCSCRDInstall}
	SplitCRD = CRD{Name: "trafficsplits.split.smi-spec.io", Plural: "trafficsplits", Kind: "TrafficSplit",
		Group: "split.smi-spec.io", Versions: []string{"v1alpha2", "v1alpha1"}, Install: SplitCRDInstall,
		Optional: true, Note: "crossmap.io/traffic-split and --traffic-split cannot work without it"}
)

func emissaryCRD(plural, kind string) CRD {
	// v3alpha1 is the only Emissary version crossmap reads and writes.
	return CRD{Name: plural + ".getambassador.io", Plural: plural, Kind: kind,
		Group: "getambassador.io", Versions: []string{"v3alpha1"}, Install: EmissaryCRDInstall}
}

// RoleNeeds is what one enabled role needs of the cluster.
type RoleNeeds struct {
	// Role is RoleExport, RoleImport or RoleRoute.
	Role string
	// Off is the flag that turns the role off.
	Off string
	// CRDs are the custom resources the role watches or writes.
	CRDs []CRD
}

// Needs lists, for each role c enables, the CRDs it uses. It is the one
// table both the controller's start and `crossmap check` read, so that
// the two never disagree:
//   - export: the gateway Mapping and Host it writes (Emissary's CRDs);
//   - import: Links, its input; mirrors are core Services and
//     EndpointSlices, so a cluster whose edge is not Emissary, or that is
//     only meshed, can mirror without Emissary's CRDs;
//   - mcs: the ServiceExports it reads (and whose status it writes) and
//     the ServiceImports it writes;
//   - route: the Mappings it reads and writes, the Hosts they bind to, the
//     Links that name the clusters, and with mutual TLS the TLSContexts the
//     trust role writes for the generated Mappings to name; TrafficSplits
//     only for crossmap.io/traffic-split (optional).
//
// The trust role itself uses Secrets only: its TLSContexts exist for the
// route role's Mappings and are written only when that role is on.
func (c *Config) Needs() []RoleNeeds {
	var out []RoleNeeds
	if c.Export {
		out = append(out, RoleNeeds{Role: RoleExport, Off: "--export=false", CRDs: []CRD{MappingCRD, HostCRD}})
	}
	if c.Import {
		out = append(out, RoleNeeds{Role: RoleImport, Off: "--import=false", CRDs: []CRD{LinkCRD}})
	}
	if c.MCS {
		out = append(out, RoleNeeds{Role: RoleMCS, Off: "--mcs=false", CRDs: []CRD{ServiceExportCRD, ServiceImportCRD}})
	}
	if c.Routes {
		crds := []CRD{MappingCRD, HostCRD, LinkCRD}
		if c.MutualTLS() {
			crds = append(crds, TLSContextCRD)
		}
		out = append(out, RoleNeeds{Role: RoleRoute, Off: "--routes=false", CRDs: append(crds, SplitCRD)})
	}
	return out
}

// uses says whether an enabled role uses crd.
func (c *Config) uses(crd CRD) bool {
	for _, n := range c.Needs() {
		if slices.ContainsFunc(n.CRDs, func(x CRD) bool { return x.Name == crd.Name }) {
			return true
		}
	}
	return false
}

// ServedVersions returns the versions of crd's kind that the API server
// behind dc serves, from discovery: what a cache or client could use. An
// API group the server does not know is no error, just nothing served.
func ServedVersions(dc discovery.DiscoveryInterface, crd CRD) ([]string, error) {
	var served []string
	for _, gvk := range crd.GroupVersionKinds() {
		rs, err := dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", gvk.GroupVersion(), err)
		}
		for _, r := range rs.APIResources {
			if r.Name == crd.Plural && r.Kind == crd.Kind {
				served = append(served, gvk.Version)
				break
			}
		}
	}
	return served, nil
}

// MissingCRDError is the controller's refusal to start because a role it
// runs needs a CRD the cluster does not serve. It names each such role,
// the CRDs it misses and how to install them, or how to turn the role off.
type MissingCRDError struct {
	// Missing maps each role (in Needs' order, see Roles) to the CRDs it
	// misses.
	Missing map[string][]CRD
	// Roles are the roles with something missing, in Needs' order.
	Roles []string
	offs  map[string]string
}

func (e *MissingCRDError) Error() string {
	lines := make([]string, 0, len(e.Roles))
	for _, role := range e.Roles {
		crds := e.Missing[role]
		names := make([]string, 0, len(crds))
		var installs []string
		for _, c := range crds {
			names = append(names, fmt.Sprintf("%s (%s)", c.Name, strings.Join(c.Versions, " or ")))
			if !slices.Contains(installs, c.Install) {
				installs = append(installs, c.Install)
			}
		}
		noun := "CRD"
		if len(names) > 1 {
			noun = "CRDs"
		}
		lines = append(lines, fmt.Sprintf("the %s role needs the %s %s, which the cluster does not serve: %s; or turn the role off with %s",
			role, noun, strings.Join(names, ", "), strings.Join(installs, "; "), e.offs[role]))
	}
	return strings.Join(lines, "\n")
}

// CheckCRDs asks the API server behind restCfg whether it serves every
// required CRD of the roles cfg enables, and returns a *MissingCRDError
// naming what is not. It runs before the manager is made: a cache for a
// kind the server does not know fails far from its cause ("failed to
// determine if *v3alpha1.TLSContext is namespaced"), or waits for a sync
// that never comes.
func CheckCRDs(restCfg *rest.Config, cfg Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("create discovery client: %w", err)
	}
	return checkCRDs(dc, cfg)
}

func checkCRDs(dc discovery.DiscoveryInterface, cfg Config) error {
	e := &MissingCRDError{Missing: map[string][]CRD{}, offs: map[string]string{}}
	served := map[string][]string{}
	var errs []error
	for _, n := range cfg.Needs() {
		for _, crd := range n.CRDs {
			if crd.Optional {
				continue
			}
			versions, ok := served[crd.Name]
			if !ok {
				v, err := ServedVersions(dc, crd)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				served[crd.Name], versions = v, v
			}
			if len(versions) > 0 {
				continue
			}
			if len(e.Missing[n.Role]) == 0 {
				e.Roles = append(e.Roles, n.Role)
				e.offs[n.Role] = n.Off
			}
			e.Missing[n.Role] = append(e.Missing[n.Role], crd)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check CRDs: %w", errors.Join(errs...))
	}
	if len(e.Roles) > 0 {
		return e
	}
	return nil
}
