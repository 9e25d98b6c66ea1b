package status

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/mapper"
)

// The Multi-Cluster Services API (KEP-1645) as the status API shows it:
// the ServiceExports of this cluster with the conditions crossmap set on
// them, and the ServiceImports crossmap wrote with the clusters behind
// them. Both are plain values, so that the status package needs neither
// the MCS types nor a client: the reconciler that writes the objects
// converts what it wrote and hands it over with SetExports and SetImports.

// Condition is one condition of a ServiceExport or a ServiceImport, as
// crossmap set it: the KEP's Valid, Ready and Conflict on an export, the
// API's Ready on an import.
type Condition struct {
	Type string `json:"type"`
	// Status is "True", "False" or "Unknown".
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is the condition's lastTransitionTime.
	Since time.Time `json:"since,omitzero"`
}

// IsTrue tells whether the condition holds.
func (c Condition) IsTrue() bool { return c.Status == "True" }

// Export is what the status API shows of one ServiceExport in this cluster.
type Export struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Conditions are the export's conditions in the order the KEP lists
	// them: Valid, Ready, Conflict.
	Conditions []Condition `json:"conditions"`
}

// Key is the export's namespace/name, which is also its Service's.
func (e Export) Key() string { return e.Namespace + "/" + e.Name }

// Condition returns the export's condition of type t, if it has one.
func (e Export) Condition(t string) (Condition, bool) {
	return findCondition(e.Conditions, t)
}

// ImportPort is one port of a ServiceImport: the union of the exported
// Services' ports.
type ImportPort struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

// ImportCluster is one exporting cluster behind a ServiceImport, with the
// endpoints crossmap's EndpointSlices hold for it.
type ImportCluster struct {
	Cluster string `json:"cluster"`
	// Local is true for this cluster's own export: the KEP's self-import,
	// whose endpoints come from the exported Service itself.
	Local bool `json:"local,omitempty"`
	// Endpoints and ReadyEndpoints count the endpoints of the cluster's
	// slices: in gateway mode a remote cluster's gateway, in flat mode its
	// pods.
	Endpoints      int `json:"endpoints"`
	ReadyEndpoints int `json:"readyEndpoints"`
}

// Import is what the status API shows of one ServiceImport crossmap wrote.
type Import struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is ClusterSetIP or Headless.
	Type string `json:"type"`
	// IPs is the clusterset IP, one per IP family; none for Headless.
	IPs   []string     `json:"ips"`
	Ports []ImportPort `json:"ports"`
	// Clusters are the exporting clusters, the import's status.clusters.
	Clusters   []ImportCluster `json:"clusters"`
	Conditions []Condition     `json:"conditions"`
}

// Key is the import's namespace/name.
func (i Import) Key() string { return i.Namespace + "/" + i.Name }

// ReadyEndpoints counts the ready endpoints of every cluster behind the
// import.
func (i Import) ReadyEndpoints() int {
	n := 0
	for _, c := range i.Clusters {
		n += c.ReadyEndpoints
	}
	return n
}

// SetExports replaces every ServiceExport the model shows.
func (m *Model) SetExports(exports []Export) {
	next := make(map[string]Export, len(exports))
	for _, e := range exports {
		e.Conditions = slices.Clone(e.Conditions)
		next[e.Key()] = e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exports = next
}

// SetImports replaces every ServiceImport the model shows.
func (m *Model) SetImports(imports []Import) {
	next := make(map[string]Import, len(imports))
	for _, i := range imports {
		next[i.Key()] = cloneImport(i)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.imports = next
}

func cloneImport(i Import) Import {
	i.IPs = slices.Clone(i.IPs)
	i.Ports = slices.Clone(i.Ports)
	i.Clusters = slices.Clone(i.Clusters)
	i.Conditions = slices.Clone(i.Conditions)
	return i
}

// mcsView adds the exports and imports to v, sorted by key, every list
// non-nil. The caller holds m.mu.
func (m *Model) mcsView(v *View) {
	v.Exports, v.Imports = []Export{}, []Import{}
	for _, e := range m.exports {
		e.Conditions = append([]Condition{}, e.Conditions...)
		v.Exports = append(v.Exports, e)
	}
	slices.SortFunc(v.Exports, func(a, b Export) int { return cmp.Compare(a.Key(), b.Key()) })
	for _, i := range m.imports {
		i.IPs = append([]string{}, i.IPs...)
		i.Ports = append([]ImportPort{}, i.Ports...)
		i.Clusters = append([]ImportCluster{}, i.Clusters...)
		i.Conditions = append([]Condition{}, i.Conditions...)
		v.Imports = append(v.Imports, i)
	}
	slices.SortFunc(v.Imports, func(a, b Import) int { return cmp.Compare(a.Key(), b.Key()) })
}

func findCondition(conds []Condition, t string) (Condition, bool) {
	for _, c := range conds {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request) {
	if e, ok := byKey(w, r, s.view().Exports, "ServiceExport"); ok {
		writeJSON(w, http.StatusOK, e)
	}
}

func (s *Server) getImport(w http.ResponseWriter, r *http.Request) {
	if i, ok := byKey(w, r, s.view().Imports, "ServiceImport"); ok {
		writeJSON(w, http.StatusOK, i)
	}
}

// badge is how the page shows one condition: a health class and a label.
type badge struct {
	Class, Label string
}

type pageExport struct {
	Export
	Health string
	// Valid, Ready and Conflict are the KEP's three conditions as badges.
	Valid, Ready, Conflict badge
	// Messages are the messages of the conditions that are not as they
	// should be, for the reader to act on.
	Messages []string
}

// newPageExport reads an export's conditions the way the KEP means them:
// Valid and Ready should be True, Conflict False. A conflicting export is
// still exported (the oldest export's properties win), so a conflict is a
// warning; an export that is not Valid is not exported at all.
func newPageExport(e Export) pageExport {
	pe := pageExport{Export: e, Health: healthOK}
	show := func(t, want, okLabel string, failed string) badge {
		c, ok := e.Condition(t)
		switch {
		case !ok:
			return badge{healthNone, "–"}
		case c.Status == want:
			return badge{healthOK, okLabel}
		}
		if c.Message != "" {
			pe.Messages = append(pe.Messages, c.Message)
		}
		label := c.Reason
		if label == "" {
			label = t + "=" + c.Status
		}
		return badge{failed, label}
	}
	pe.Valid = show("Valid", "True", "valid", healthBad)
	pe.Ready = show("Ready", "True", "ready", healthWarn)
	pe.Conflict = show("Conflict", "False", "no conflicts", healthWarn)
	switch {
	case pe.Valid.Class == healthBad:
		pe.Health = healthBad
	case pe.Ready.Class == healthWarn || pe.Conflict.Class == healthWarn:
		pe.Health = healthWarn
	}
	return pe
}

type pageImport struct {
	Import
	// Health is ok with a ready endpoint, warn with none, bad when no
	// cluster exports the Service any more.
	Health string
	Ready  badge
}

func newPageImport(i Import) pageImport {
	pi := pageImport{Import: i, Health: healthOK, Ready: badge{healthNone, "–"}}
	switch {
	case len(i.Clusters) == 0:
		pi.Health = healthBad
	case i.ReadyEndpoints() == 0:
		pi.Health = healthWarn
	}
	if c, ok := findCondition(i.Conditions, "Ready"); ok {
		pi.Ready = badge{healthOK, "ready"}
		if !c.IsTrue() {
			pi.Ready = badge{healthWarn, cmp.Or(c.Reason, "Ready="+c.Status)}
		}
	}
	return pi
}

// ExportsFrom is what the status API shows of this cluster's ServiceExports,
// from the conditions crossmap wrote on them (mapper.MCSResult.Exports, with
// the transition times the controller kept).
func ExportsFrom(in []mapper.ExportStatus) []Export {
	out := make([]Export, 0, len(in))
	for _, e := range in {
		ex := Export{Namespace: e.Namespace, Name: e.Name, Conditions: make([]Condition, 0, len(e.Conditions))}
		for _, c := range e.Conditions {
			ex.Conditions = append(ex.Conditions, conditionFrom(c))
		}
		out = append(out, ex)
	}
	return out
}

// ImportsFrom is what the status API shows of the ServiceImports the MCS
// translation rendered (mapper.MCSResult.Imports), each with its clusters
// in status.clusters order and the endpoints of their EndpointSlices among
// objs (mapper.MCSResult.Objects). local is this cluster's name: its
// cluster is the self-import.
func ImportsFrom(in []mapper.ImportStatus, objs []mapper.Object, local string) []Import {
	type sliceKey struct{ namespace, service, cluster string }
	counts := map[sliceKey][2]int{} // endpoints, ready endpoints
	for _, o := range objs {
		es, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		k := sliceKey{es.Namespace, es.Labels[mcsv1beta1.LabelServiceName], es.Labels[mcsv1beta1.LabelSourceCluster]}
		n := counts[k]
		for _, ep := range es.Endpoints {
			n[0]++
			// As for EndpointSlices in general, no ready condition
			// means ready.
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n[1]++
			}
		}
		counts[k] = n
	}
	out := make([]Import, 0, len(in))
	for _, si := range in {
		imp := Import{Namespace: si.Namespace, Name: si.Name, Type: string(si.Type), IPs: slices.Clone(si.IPs)}
		for _, p := range si.Ports {
			imp.Ports = append(imp.Ports, ImportPort{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port})
		}
		for _, c := range si.Status.Clusters {
			n := counts[sliceKey{si.Namespace, si.Name, c.Cluster}]
			imp.Clusters = append(imp.Clusters, ImportCluster{Cluster: c.Cluster, Local: c.Cluster == local,
				Endpoints: n[0], ReadyEndpoints: n[1]})
		}
		for _, c := range si.Status.Conditions {
			imp.Conditions = append(imp.Conditions, conditionFrom(c))
		}
		out = append(out, imp)
	}
	return out
}

func conditionFrom(c metav1.Condition) Condition {
	return Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message, Since: c.LastTransitionTime.Time}
}
