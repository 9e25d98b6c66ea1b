package mapper

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// This file is the Multi-Cluster Services translation (KEP-1645,
// sigs.k8s.io/mcs-api v1beta1): every cluster's ServiceExports, read
// locally and through the Links, become this cluster's ServiceImports,
// their EndpointSlices (one source cluster per slice) and the derived
// Service whose ClusterIP is the clusterset IP; and each local
// ServiceExport gets the KEP's conditions. Every cluster computes the same
// merge from the same exports, so conflicts are decided alike everywhere.

// RoleMCS marks the objects the MCS translation renders: ServiceImports,
// their derived Services and their EndpointSlices.
const RoleMCS = "mcs"

// Reasons of the MCS Problems, beside the KEP's own conflict reasons
// (mcsv1beta1.ServiceExportReason*), which Problems carry as they are.
const (
	ReasonNoService          = string(mcsv1beta1.ServiceExportReasonNoService)
	ReasonInvalidServiceType = string(mcsv1beta1.ServiceExportReasonInvalidServiceType)
)

// ClusterExports is what one cluster of the clusterset exports, as this
// cluster sees it: its own, read from the local caches, or a linked
// cluster's, read through the Link's remote watcher.
type ClusterExports struct {
	// Cluster is the cluster's name: this cluster's --cluster-name, or the
	// Link's clusterName.
	Cluster string
	// Local is set for this cluster's own exports: its endpoints are its
	// Services' own, and its ServiceExports get conditions.
	Local bool
	// Mode, GatewayAddresses, GatewayPort and GatewayAlive say how a remote
	// cluster's endpoints are reached, as for its mirrors: in gateway mode
	// through its gateway, in flat mode straight at its pods.
	Mode             crossmapv1.Mode
	GatewayAddresses []netip.Addr
	GatewayPort      int32
	GatewayAlive     bool
	// Exports are the cluster's ServiceExports.
	Exports []*mcsv1beta1.ServiceExport
	// Services are the cluster's Services; those no ServiceExport names
	// are ignored.
	Services []*corev1.Service
	// Slices are the cluster's EndpointSlices; those of Services not
	// exported are ignored.
	Slices []*discoveryv1.EndpointSlice
}

// MCSSnapshot is the clusterset's exports and the few local facts the
// ServiceImports depend on.
type MCSSnapshot struct {
	// Clusters are every cluster's exports, this cluster's included (the
	// KEP's self-import: an exporting cluster imports too).
	Clusters []ClusterExports
	// LocalNamespaces are the namespaces that exist here: a service is
	// imported only where its namespace exists (KEP, "Importing
	// Services").
	LocalNamespaces sets.Set[string]
	// Imports are the ServiceImports crossmap owns here now. Their UIDs own
	// the derived Services and the EndpointSlices, which are rendered only
	// once their ServiceImport exists.
	Imports []*mcsv1beta1.ServiceImport
	// Derived are the derived Services crossmap owns here now: the
	// API server allocates their ClusterIPs, the clusterset IPs.
	Derived []*corev1.Service
}

// MCSResult is the translation of an MCSSnapshot.
type MCSResult struct {
	// Objects are the ServiceImports (without status), derived Services
	// and EndpointSlices, stamped.
	Objects []Object
	// Imports are, per ServiceImport rendered, its status and how it was
	// merged: what the controller writes to the status subresource, and
	// what the status API shows.
	Imports []ImportStatus
	// Exports are the conditions of this cluster's ServiceExports, without
	// transition times (the caller keeps those of unchanged conditions).
	Exports []ExportStatus
	// Problems are the local ServiceExports that are not valid or are in
	// conflict.
	Problems []Problem
}

// ImportStatus is one ServiceImport as merged: its status subresource and
// the facts behind it, as plain data.
type ImportStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is ClusterSetIP or Headless; IPs are the clusterset IPs (none
	// until the derived Service has its ClusterIP, and none when Headless).
	Type mcsv1beta1.ServiceImportType `json:"type"`
	IPs  []string                     `json:"ips,omitempty"`
	// Ports are the merged ports.
	Ports []mcsv1beta1.ServicePort `json:"ports"`
	// Winner is the cluster of the oldest export, whose values win every
	// conflict; Conflicts are the KEP's reasons, empty without conflict.
	Winner    string   `json:"winner"`
	Conflicts []string `json:"conflicts,omitempty"`
	// Status is what the ServiceImport's status subresource holds.
	Status mcsv1beta1.ServiceImportStatus `json:"status"`
}

// ExportStatus is the conditions of one local ServiceExport.
type ExportStatus struct {
	Namespace  string             `json:"namespace"`
	Name       string             `json:"name"`
	Conditions []metav1.Condition `json:"conditions"`
}

// MCSSelector selects every object the MCS translation renders.
func MCSSelector() map[string]string {
	return map[string]string{
		crossmapv1.LabelManagedBy: crossmapv1.ManagedBy,
		crossmapv1.LabelRole:      RoleMCS,
	}
}

// DerivedServiceName is the name of the Service whose ClusterIP is the
// clusterset IP of ServiceImport name. It is a function of the name alone,
// so that the clusterset IP stays while exports come, go and conflict, and
// it never has the <svc>-<cluster> shape of a mirror.
func DerivedServiceName(name string) string { return "mcs-" + shortHash(name) }

// constituent is one valid export of a service: the export, its Service
// and its cluster.
type constituent struct {
	cluster *ClusterExports
	export  *mcsv1beta1.ServiceExport
	service *corev1.Service
}

// MCS translates the clusterset's exports into this cluster's
// ServiceImports, derived Services and EndpointSlices, and the conditions
// of this cluster's ServiceExports.
func MCS(s MCSSnapshot) MCSResult {
	var res MCSResult
	groups := map[serviceName][]constituent{}
	clusters := slices.Clone(s.Clusters)
	slices.SortFunc(clusters, func(a, b ClusterExports) int { return cmp.Compare(a.Cluster, b.Cluster) })
	invalid := map[serviceName]metav1.Condition{}
	for i := range clusters {
		c := &clusters[i]
		svcs := map[serviceName]*corev1.Service{}
		for _, svc := range c.Services {
			svcs[serviceName{svc.Namespace, svc.Name}] = svc
		}
		exports := slices.Clone(c.Exports)
		slices.SortFunc(exports, compareObjects)
		for _, ex := range exports {
			key := serviceName{ex.Namespace, ex.Name}
			svc := svcs[key]
			cond, ok := validity(svc, ex)
			if !ok {
				if c.Local {
					invalid[key] = cond
					res.Problems = append(res.Problems, Problem{Reason: cond.Reason,
						Object: ObjectRef{Kind: "ServiceExport", Namespace: ex.Namespace, Name: ex.Name}, Message: cond.Message})
				}
				continue
			}
			groups[key] = append(groups[key], constituent{cluster: c, export: ex, service: svc})
		}
	}
	imports := map[serviceName]*mcsv1beta1.ServiceImport{}
	for _, si := range s.Imports {
		imports[serviceName{si.Namespace, si.Name}] = si
	}
	derived := map[serviceName]*corev1.Service{}
	for _, svc := range s.Derived {
		derived[serviceName{svc.Namespace, svc.Labels[crossmapv1.LabelSourceName]}] = svc
	}

	keys := slices.Collect(maps.Keys(groups))
	slices.SortFunc(keys, func(a, b serviceName) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
	for _, key := range keys {
		group := groups[key]
		// The KEP's conflict resolution: the oldest ServiceExport wins
		// ("Constraints and Conflict Resolution"); the cluster name breaks
		// a tie, so that every cluster picks the same winner.
		slices.SortStableFunc(group, func(a, b constituent) int {
			return cmp.Or(a.export.CreationTimestamp.Time.Compare(b.export.CreationTimestamp.Time),
				cmp.Compare(a.cluster.Cluster, b.cluster.Cluster))
		})
		m := merge(group)
		for _, c := range group {
			if c.cluster.Local {
				res.Exports = append(res.Exports, ExportStatus{Namespace: key.namespace, Name: key.name, Conditions: validConditions(m)})
				if len(m.conflicts) > 0 {
					res.Problems = append(res.Problems, Problem{Reason: strings.Join(m.conflicts, ","),
						Object: ObjectRef{Kind: "ServiceExport", Namespace: key.namespace, Name: key.name}, Message: m.message})
				}
			}
		}
		if !s.LocalNamespaces.Has(key.namespace) {
			continue
		}
		objs, st := renderImport(key, m, group, imports[key], derived[key])
		res.Objects = append(res.Objects, objs...)
		res.Imports = append(res.Imports, st)
	}
	for key, cond := range invalid {
		res.Exports = append(res.Exports, ExportStatus{Namespace: key.namespace, Name: key.name, Conditions: []metav1.Condition{
			cond,
			{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionFalse,
				Reason: string(readyReasonFor(cond.Reason)), Message: "The ServiceExport is not valid, so its Service is not exported."},
		}})
	}
	slices.SortFunc(res.Exports, func(a, b ExportStatus) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(res.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Object.Namespace, b.Object.Namespace), cmp.Compare(a.Object.Name, b.Object.Name))
	})
	return res
}

// readyReasonFor is the Ready reason of an invalid export: a missing
// Service may yet come (Pending); an ExternalName Service never exports
// (Failed).
func readyReasonFor(validReason string) mcsv1beta1.ServiceExportConditionReason {
	if validReason == ReasonNoService {
		return mcsv1beta1.ServiceExportReasonPending
	}
	return mcsv1beta1.ServiceExportReasonFailed
}

// validity is the Valid condition of export ex of svc (nil: missing), and
// whether it is valid.
func validity(svc *corev1.Service, ex *mcsv1beta1.ServiceExport) (metav1.Condition, bool) {
	cond := metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionValid)}
	switch {
	case svc == nil:
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonNoService
		cond.Message = fmt.Sprintf("ServiceExport %s/%s names no Service: there is no Service %s in namespace %s.", ex.Namespace, ex.Name, ex.Name, ex.Namespace)
		return cond, false
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		// KEP, "Service Types": an ExternalName Service cannot be merged
		// across clusters.
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonInvalidServiceType
		cond.Message = fmt.Sprintf("Service %s/%s is of type ExternalName, which cannot be exported; create an ExternalName Service in each cluster instead.", svc.Namespace, svc.Name)
		return cond, false
	case svc.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy:
		// A mirror or a derived Service: exporting it would route a
		// cluster's traffic back through itself.
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonInvalidServiceType
		cond.Message = fmt.Sprintf("Service %s/%s is written by crossmap (a mirror or a derived Service) and is not exported.", svc.Namespace, svc.Name)
		return cond, false
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, string(mcsv1beta1.ServiceExportReasonValid)
	cond.Message = "The ServiceExport names a Service that can be exported."
	return cond, true
}

// merged is a service as the clusterset sees it, after conflict
// resolution.
type merged struct {
	winner                string
	typ                   mcsv1beta1.ServiceImportType
	ports                 []mcsv1beta1.ServicePort
	sessionAffinity       corev1.ServiceAffinity
	sessionAffinityConfig *corev1.SessionAffinityConfig
	internalTraffic       *corev1.ServiceInternalTrafficPolicy
	trafficDistribution   *string
	labels, annotations   map[string]string
	clusters              []string
	conflicts             []string
	message               string
}

func importType(svc *corev1.Service) mcsv1beta1.ServiceImportType {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return mcsv1beta1.Headless
	}
	return mcsv1beta1.ClusterSetIP
}

// mcsPorts are svc's ports as a ServiceImport writes them, with the
// API's defaults made explicit so that equal ports compare equal.
func mcsPorts(svc *corev1.Service) []mcsv1beta1.ServicePort {
	out := make([]mcsv1beta1.ServicePort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, mcsv1beta1.ServicePort{Name: p.Name, Protocol: cmp.Or(p.Protocol, corev1.ProtocolTCP),
			AppProtocol: clonePtr(p.AppProtocol), Port: p.Port})
	}
	return out
}

// merge applies the KEP's conflict resolution to group, oldest export
// first: every global property is the oldest export's, and a property on
// which some export disagrees is a conflict, reported on every export.
func merge(group []constituent) merged {
	oldest := group[0]
	m := merged{
		winner:                oldest.cluster.Cluster,
		typ:                   importType(oldest.service),
		sessionAffinity:       cmp.Or(oldest.service.Spec.SessionAffinity, corev1.ServiceAffinityNone),
		sessionAffinityConfig: oldest.service.Spec.SessionAffinityConfig.DeepCopy(),
		internalTraffic:       clonePtr(oldest.service.Spec.InternalTrafficPolicy),
		trafficDistribution:   clonePtr(oldest.service.Spec.TrafficDistribution),
		labels:                maps.Clone(oldest.export.Spec.ExportedLabels),
		annotations:           maps.Clone(oldest.export.Spec.ExportedAnnotations),
	}
	clusters := sets.New[string]()
	for _, c := range group {
		clusters.Insert(c.cluster.Cluster)
	}
	m.clusters = sets.List(clusters)

	// KEP, "Service Port": the union of the ports, merged by name first
	// and then by protocol and port number; of two ports that clash, the
	// older export's is kept.
	byName := map[string]bool{}
	byNumber := map[string]bool{}
	for _, c := range group {
		for _, p := range mcsPorts(c.service) {
			number := string(p.Protocol) + "/" + strconv.Itoa(int(p.Port))
			if byName[p.Name] || byNumber[number] {
				continue
			}
			byName[p.Name], byNumber[number] = true, true
			m.ports = append(m.ports, p)
		}
	}
	samePorts := func(svc *corev1.Service) bool {
		a, b := mcsPorts(svc), slices.Clone(m.ports)
		less := func(x, y mcsv1beta1.ServicePort) int { return cmp.Compare(x.Name, y.Name) }
		slices.SortFunc(a, less)
		slices.SortFunc(b, less)
		return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
	}

	disagree := sets.New[string]()
	check := func(reason mcsv1beta1.ServiceExportConditionReason, same func(constituent) bool) {
		for _, c := range group {
			if !same(c) {
				m.conflicts = append(m.conflicts, string(reason))
				for _, c := range group {
					if !same(c) {
						disagree.Insert(c.cluster.Cluster)
					}
				}
				return
			}
		}
	}
	check(mcsv1beta1.ServiceExportReasonPortConflict, func(c constituent) bool { return samePorts(c.service) })
	check(mcsv1beta1.ServiceExportReasonTypeConflict, func(c constituent) bool { return importType(c.service) == m.typ })
	check(mcsv1beta1.ServiceExportReasonSessionAffinityConflict, func(c constituent) bool {
		return cmp.Or(c.service.Spec.SessionAffinity, corev1.ServiceAffinityNone) == m.sessionAffinity
	})
	check(mcsv1beta1.ServiceExportReasonSessionAffinityConfigConflict, func(c constituent) bool {
		return reflect.DeepEqual(c.service.Spec.SessionAffinityConfig, m.sessionAffinityConfig)
	})
	check(mcsv1beta1.ServiceExportReasonInternalTrafficPolicyConflict, func(c constituent) bool {
		return reflect.DeepEqual(c.service.Spec.InternalTrafficPolicy, m.internalTraffic)
	})
	check(mcsv1beta1.ServiceExportReasonTrafficDistributionConflict, func(c constituent) bool {
		return reflect.DeepEqual(c.service.Spec.TrafficDistribution, m.trafficDistribution)
	})
	check(mcsv1beta1.ServiceExportReasonLabelsConflict, func(c constituent) bool {
		return maps.Equal(c.export.Spec.ExportedLabels, m.labels)
	})
	check(mcsv1beta1.ServiceExportReasonAnnotationsConflict, func(c constituent) bool {
		return maps.Equal(c.export.Spec.ExportedAnnotations, m.annotations)
	})
	if len(m.conflicts) > 0 {
		m.message = fmt.Sprintf("%s across the clusters exporting %s/%s: the values of the oldest ServiceExport, in cluster %s, are used (ports: the union, the oldest export's port kept where two clash). %d of %d clusters export it differently from that: %s.",
			describeConflicts(m.conflicts), oldest.export.Namespace, oldest.export.Name, m.winner,
			disagree.Len(), len(m.clusters), strings.Join(sets.List(disagree), ", "))
	}
	return m
}

func describeConflicts(reasons []string) string {
	words := map[string]string{
		string(mcsv1beta1.ServiceExportReasonPortConflict):                  "ports",
		string(mcsv1beta1.ServiceExportReasonTypeConflict):                  "type (headless or not)",
		string(mcsv1beta1.ServiceExportReasonSessionAffinityConflict):       "session affinity",
		string(mcsv1beta1.ServiceExportReasonSessionAffinityConfigConflict): "session affinity config",
		string(mcsv1beta1.ServiceExportReasonInternalTrafficPolicyConflict): "internal traffic policy",
		string(mcsv1beta1.ServiceExportReasonTrafficDistributionConflict):   "traffic distribution",
		string(mcsv1beta1.ServiceExportReasonLabelsConflict):                "exported labels",
		string(mcsv1beta1.ServiceExportReasonAnnotationsConflict):           "exported annotations",
	}
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, words[r])
	}
	return "Conflicting " + strings.Join(out, ", ")
}

// validConditions are the conditions of a valid local export of m.
func validConditions(m merged) []metav1.Condition {
	conds := []metav1.Condition{
		{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionTrue,
			Reason: string(mcsv1beta1.ServiceExportReasonValid), Message: "The ServiceExport names a Service that can be exported."},
		// crossmap is a pull model: linked clusters read the export
		// through their Links, so once valid it is ready to be pulled.
		{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionTrue,
			Reason: string(mcsv1beta1.ServiceExportReasonReady), Message: "The Service is exported: every cluster linked to this one imports it."},
	}
	if len(m.conflicts) == 0 {
		return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict), Status: metav1.ConditionFalse,
			Reason: string(mcsv1beta1.ServiceExportReasonNoConflicts), Message: "Every cluster exports this service alike."})
	}
	return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict), Status: metav1.ConditionTrue,
		Reason: strings.Join(m.conflicts, ","), Message: m.message})
}

func mcsLabels(key serviceName) map[string]string {
	l := MCSSelector()
	l[crossmapv1.LabelSourceNamespace] = key.namespace
	l[crossmapv1.LabelSourceName] = key.name
	return l
}

// renderImport renders the ServiceImport of key and, once it exists (si),
// its derived Service and EndpointSlices.
func renderImport(key serviceName, m merged, group []constituent, si *mcsv1beta1.ServiceImport, derived *corev1.Service) ([]Object, ImportStatus) {
	// The exported labels and annotations, and only those (KEP, "Labels
	// and Annotations"); crossmap's own labels are kept over them.
	labels := maps.Clone(m.labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, mcsLabels(key))
	spec := mcsv1beta1.ServiceImportSpec{
		Type: m.typ,
		// Never null: the CRD requires the list, and a headless Service
		// may have no ports.
		Ports:                 append([]mcsv1beta1.ServicePort{}, m.ports...),
		SessionAffinity:       m.sessionAffinity,
		SessionAffinityConfig: m.sessionAffinityConfig.DeepCopy(),
		InternalTrafficPolicy: clonePtr(m.internalTraffic),
		TrafficDistribution:   clonePtr(m.trafficDistribution),
	}
	if m.typ == mcsv1beta1.ClusterSetIP && derived != nil && len(derived.Spec.ClusterIPs) > 0 {
		spec.IPs = slices.Clone(derived.Spec.ClusterIPs)
		spec.IPFamilies = slices.Clone(derived.Spec.IPFamilies)
	}
	imp := &mcsv1beta1.ServiceImport{
		TypeMeta: metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: mcsv1beta1.ServiceImportKindName},
		ObjectMeta: metav1.ObjectMeta{Name: key.name, Namespace: key.namespace, Labels: labels,
			Annotations: maps.Clone(m.annotations)},
		Spec: spec,
	}
	objs := []Object{Stamp(imp)}
	st := ImportStatus{Namespace: key.namespace, Name: key.name, Type: m.typ, IPs: spec.IPs, Ports: slices.Clone(m.ports),
		Winner: m.winner, Conflicts: slices.Clone(m.conflicts)}
	for _, c := range m.clusters {
		st.Status.Clusters = append(st.Status.Clusters, mcsv1beta1.ClusterStatus{Cluster: c})
	}
	st.Status.EndpointSliceObjects = mcsv1beta1.EndpointSliceObjectsPresent
	ready := metav1.Condition{Type: string(mcsv1beta1.ServiceImportConditionReady), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceImportReasonReady), Message: "The ServiceImport, its EndpointSlices and its clusterset IP are in place."}
	switch {
	case si == nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionUnknown, string(mcsv1beta1.ServiceImportReasonPending), "The ServiceImport is being created."
	case m.typ == mcsv1beta1.ClusterSetIP && len(spec.IPs) == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, string(mcsv1beta1.ServiceImportReasonPending), "The clusterset IP is being allocated."
	case m.typ == mcsv1beta1.Headless:
		ready.Message = "The ServiceImport and its EndpointSlices are in place (headless: no clusterset IP)."
	}
	st.Status.Conditions = []metav1.Condition{ready}
	if si == nil {
		// The children are owned by the ServiceImport and need its UID:
		// they follow on the reconcile its creation triggers.
		return objs, st
	}
	owner := []metav1.OwnerReference{{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: mcsv1beta1.ServiceImportKindName,
		Name: si.Name, UID: si.UID}}
	derivedName := ""
	if m.typ == mcsv1beta1.ClusterSetIP {
		derivedName = DerivedServiceName(key.name)
		objs = append(objs, Stamp(derivedService(key, derivedName, m, owner)))
	}
	for _, c := range group {
		for _, es := range importSlices(key, m, c, derivedName, owner) {
			objs = append(objs, Stamp(es))
		}
	}
	return objs, st
}

// derivedService is the selectorless ClusterIP Service that holds the
// clusterset IP: the API server allocates it, and kube-proxy programs it
// from the import's EndpointSlices, which name it.
func derivedService(key serviceName, name string, m merged, owner []metav1.OwnerReference) *corev1.Service {
	ports := make([]corev1.ServicePort, 0, len(m.ports))
	for _, p := range m.ports {
		ports = append(ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: clonePtr(p.AppProtocol),
			Port: p.Port, TargetPort: intstr.FromInt32(p.Port)})
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: key.namespace, Labels: mcsLabels(key),
			OwnerReferences: slices.Clone(owner)},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			Ports:                 ports,
			SessionAffinity:       m.sessionAffinity,
			SessionAffinityConfig: m.sessionAffinityConfig.DeepCopy(),
		},
	}
}

// servedPorts are the merged ports cluster c's Service exposes itself, by
// name: traffic to a port only another cluster exposes must not reach c
// (KEP, "Service Port").
func servedPorts(m merged, c constituent) []mcsv1beta1.ServicePort {
	own := mcsPorts(c.service)
	var out []mcsv1beta1.ServicePort
	for _, p := range m.ports {
		if slices.ContainsFunc(own, func(o mcsv1beta1.ServicePort) bool {
			return o.Name == p.Name && o.Protocol == p.Protocol && o.Port == p.Port
		}) {
			out = append(out, p)
		}
	}
	return out
}

func importSliceMeta(key serviceName, c constituent, derivedName, name string, owner []metav1.OwnerReference) metav1.ObjectMeta {
	l := mcsLabels(key)
	l[crossmapv1.LabelSourceCluster] = c.cluster.Cluster
	l[mcsv1beta1.LabelServiceName] = key.name
	l[mcsv1beta1.LabelSourceCluster] = c.cluster.Cluster
	// Not the Kubernetes EndpointSlice controllers' to reconcile (KEP,
	// "Using EndpointSlice objects to track endpoints").
	l[discoveryv1.LabelManagedBy] = "crossmap.io"
	if derivedName != "" {
		l[discoveryv1.LabelServiceName] = derivedName
	}
	return metav1.ObjectMeta{Name: name, Namespace: key.namespace, Labels: l, OwnerReferences: slices.Clone(owner)}
}

// importSlices are cluster c's EndpointSlices of the import: in gateway
// mode (a remote cluster) its gateway, as for mirrors; otherwise (flat
// mode, or this cluster) the endpoints of its own Service's slices. Every
// slice holds endpoints of c alone.
func importSlices(key serviceName, m merged, c constituent, derivedName string, owner []metav1.OwnerReference) []*discoveryv1.EndpointSlice {
	served := servedPorts(m, c)
	if len(served) == 0 {
		return nil
	}
	var source []*discoveryv1.EndpointSlice
	for _, es := range c.cluster.Slices {
		if es.Namespace == key.namespace && es.Labels[discoveryv1.LabelServiceName] == key.name &&
			es.Labels[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy {
			source = append(source, es)
		}
	}
	slices.SortFunc(source, compareObjects)
	prefix := "imported-" + key.name + "-" + c.cluster.Cluster + "-"
	if !c.cluster.Local && c.cluster.Mode != crossmapv1.ModeFlat {
		return gatewayImportSlices(key, c, served, source, prefix, derivedName, owner)
	}
	names := sets.New[string]()
	for _, p := range served {
		names.Insert(p.Name)
	}
	var out []*discoveryv1.EndpointSlice
	for _, es := range source {
		var ports []discoveryv1.EndpointPort
		for _, p := range es.Ports {
			if names.Has(ptr.Deref(p.Name, "")) {
				ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(ptr.Deref(p.Name, "")),
					Protocol: ptr.To(ptr.Deref(p.Protocol, corev1.ProtocolTCP)), Port: clonePtr(p.Port), AppProtocol: clonePtr(p.AppProtocol)})
			}
		}
		if len(ports) == 0 {
			continue
		}
		eps := make([]discoveryv1.Endpoint, 0, len(es.Endpoints))
		for _, ep := range es.Endpoints {
			eps = append(eps, discoveryv1.Endpoint{Addresses: slices.Clone(ep.Addresses), Conditions: endpointConditions(ep.Conditions)})
		}
		// At most 9+63+1+63+1+10 characters: always a valid name.
		name := prefix + shortHash(es.Name)
		out = append(out, &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  importSliceMeta(key, c, derivedName, name, owner),
			AddressType: es.AddressType,
			Endpoints:   eps,
			Ports:       ports,
		})
	}
	return out
}

// gatewayImportSlices point at a remote cluster's gateway, one slice per
// address family, ready while the gateway is alive and the remote Service
// has a ready endpoint. The gateway carries TCP only.
func gatewayImportSlices(key serviceName, c constituent, served []mcsv1beta1.ServicePort, source []*discoveryv1.EndpointSlice, prefix, derivedName string, owner []metav1.OwnerReference) []*discoveryv1.EndpointSlice {
	var ports []discoveryv1.EndpointPort
	for _, p := range served {
		if p.Protocol == corev1.ProtocolTCP {
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(corev1.ProtocolTCP),
				Port: ptr.To(c.cluster.GatewayPort)})
		}
	}
	if len(ports) == 0 {
		return nil
	}
	ready := c.cluster.GatewayAlive && hasReadyEndpoint(source)
	var out []*discoveryv1.EndpointSlice
	for _, family := range gatewayEndpoints(c.cluster.GatewayAddresses, ready) {
		out = append(out, &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  importSliceMeta(key, c, derivedName, prefix+family.suffix, owner),
			AddressType: family.typ,
			Endpoints:   family.endpoints,
			Ports:       slices.Clone(ports),
		})
	}
	return out
}
