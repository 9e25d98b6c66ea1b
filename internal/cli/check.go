package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
)

// checkTimeout bounds each request of `crossmap check`, to the local and to
// each remote API server.
const checkTimeout = 10 * time.Second

// CheckOptions is what `crossmap check` can be told.
type CheckOptions struct {
	// Kubeconfig and Context reach the cluster to check; empty means the
	// usual loading rules.
	Kubeconfig, Context string
	// Namespace is the controller's --namespace.
	Namespace string
	// TrustAnchorSecret is the controller's --trust-anchor-secret, in
	// Namespace.
	TrustAnchorSecret string
	// As and AsGroups impersonate the controller's identity, so that the
	// RBAC checks are about it rather than about the operator.
	As       string
	AsGroups []string
	// Export, Import and Routes are the controller's role flags, and
	// InsecureCleartext its --insecure-cleartext: the CRDs checked are
	// those the enabled roles need.
	Export, Import, Routes bool
	InsecureCleartext      bool
	// MCS is the controller's --mcs.
	MCS bool
}

// roles is the part of the controller's configuration that decides which
// CRDs it needs.
func (o *CheckOptions) roles() controller.Config {
	return controller.Config{Export: o.Export, Import: o.Import, Routes: o.Routes, InsecureCleartext: o.InsecureCleartext, MCS: o.MCS}
}

func roleNames(cfg controller.Config) []string {
	var out []string
	for _, n := range cfg.Needs() {
		out = append(out, n.Role)
	}
	return out
}

// DefaultCheckOptions returns the defaults the flags start from.
func DefaultCheckOptions() CheckOptions {
	return CheckOptions{Namespace: DefaultNamespace, TrustAnchorSecret: DefaultTrustOptions().Name, Export: true, Import: true, Routes: true}
}

// BindFlags registers the flags of `crossmap check` on fs.
func (o *CheckOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the cluster to check (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.Context, "context", o.Context, "kubeconfig context to use")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "the controller's --namespace: where its Links, their Secrets and its leader election Lease are")
	fs.StringVar(&o.TrustAnchorSecret, "trust-anchor-secret", o.TrustAnchorSecret, "the controller's --trust-anchor-secret: the Secret in --namespace holding the trust anchor (ca.crt, ca.key) linked clusters share for mTLS")
	fs.BoolVar(&o.Export, "export", o.Export, "the controller's --export: check what the export role needs")
	fs.BoolVar(&o.Import, "import", o.Import, "the controller's --import: check what the import role needs")
	fs.BoolVar(&o.Routes, "routes", o.Routes, "the controller's --routes: check what the route role needs")
	fs.BoolVar(&o.MCS, "mcs", o.MCS, "the controller's --mcs: check what the Multi-Cluster Services role needs")
	fs.BoolVar(&o.InsecureCleartext, "insecure-cleartext", o.InsecureCleartext, "the controller's --insecure-cleartext: without mutual TLS the route role needs no TLSContexts")
	fs.StringVar(&o.As, "as", o.As, "check as this user, e.g. system:serviceaccount:crossmap-system:crossmap (the controller's identity); needs the right to impersonate")
	fs.Func("as-group", "group to impersonate along with --as (repeatable)", func(s string) error {
		o.AsGroups = append(o.AsGroups, s)
		return nil
	})
}

// Validate reports every invalid setting at once.
func (o *CheckOptions) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Subdomain(o.TrustAnchorSecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--trust-anchor-secret %q: %s", o.TrustAnchorSecret, strings.Join(msgs, "; ")))
	}
	if len(o.AsGroups) > 0 && o.As == "" {
		errs = append(errs, errors.New("--as-group needs --as"))
	}
	if !o.Export && !o.Import && !o.Routes && !o.MCS {
		errs = append(errs, errors.New("--export=false, --import=false and --routes=false without --mcs leave no role to check"))
	}
	return errors.Join(errs...)
}

// RunCheck loads o's kubeconfig and runs every check against that cluster.
func RunCheck(ctx context.Context, o CheckOptions, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	overrides.AuthInfo.Impersonate = o.As
	overrides.AuthInfo.ImpersonateGroups = o.AsGroups
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	return Check(ctx, cfg, o, out)
}

// Level is how bad a failed check is.
type Level string

// Levels of a check's outcome, as printed.
const (
	LevelOK   Level = "ok"
	LevelWarn Level = "warn"
	LevelFail Level = "FAIL"
)

// checker prints each check's outcome and counts the failures.
type checker struct {
	out             io.Writer
	total, failures int
}

func (c *checker) ok(format string, args ...any) {
	c.total++
	fmt.Fprintf(c.out, "[%s] %s\n", LevelOK, fmt.Sprintf(format, args...))
}

// bad reports a failed check at level (LevelWarn or LevelFail) with its fix.
func (c *checker) bad(level Level, msg, fix string) {
	c.total++
	if level == LevelFail {
		c.failures++
	}
	fmt.Fprintf(c.out, "[%s] %s — fix: %s\n", level, msg, fix)
}

func (c *checker) err() error {
	if c.failures == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d checks failed", c.failures, c.total)
}

// Check runs the preflight checks against the cluster cfg reaches, with
// cfg's identity, printing one line per check to out. It returns an error
// when a check failed; warnings alone are not failures. Of o, only
// Namespace and TrustAnchorSecret are used: cfg already says which cluster
// and identity.
func Check(ctx context.Context, cfg *rest.Config, o CheckOptions, out io.Writer) error {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = checkTimeout
	// One access review per verb and resource: client-go's default of 5
	// requests a second would make the check take seconds.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: LocalScheme()})
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	ch := &checker{out: out}

	version, err := cs.Discovery().ServerVersion()
	if err != nil {
		ch.bad(LevelFail, fmt.Sprintf("API server %s does not answer: %v", cfg.Host, err),
			"check --kubeconfig and --context, and that the cluster is up and reachable from here")
		return ch.err()
	}
	ch.ok("API server %s answers (Kubernetes %s)", cfg.Host, version.GitVersion)
	user := checkIdentity(ctx, cs, ch)

	roles := o.roles()
	ch.ok("checking for the roles %s", strings.Join(roleNames(roles), ", "))
	crds := checkCRDs(ctx, c, cs, ch, roles)
	checkRBAC(ctx, cs, ch, forRoles(ControllerPermissions(o.Namespace, crds[trafficSplitCRD]), roles), user)
	checkTrustAnchor(ctx, c, ch, o.Namespace, o.TrustAnchorSecret, time.Now())
	checkLinks(ctx, c, ch, o.Namespace)
	return ch.err()
}

// checkIdentity reports who the checks run as, and returns the user name,
// or "" when the API server does not say.
func checkIdentity(ctx context.Context, cs kubernetes.Interface, ch *checker) string {
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case apierrors.IsUnauthorized(err):
		ch.bad(LevelFail, "the API server rejects the kubeconfig's credentials: "+err.Error(),
			"refresh the credentials of --kubeconfig/--context (expired token or certificate?)")
		return ""
	case err != nil:
		// An API server without SelfSubjectReview (before 1.28): the
		// access reviews below still tell the story.
		return ""
	}
	u := review.Status.UserInfo
	groups := slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool { return g == "system:authenticated" })
	if len(groups) == 0 {
		ch.ok("authenticated as %s", u.Username)
	} else {
		ch.ok("authenticated as %s (groups %s)", u.Username, strings.Join(groups, ", "))
	}
	return u.Username
}

// trafficSplitCRD names the CRD whose presence decides whether the
// TrafficSplit permissions are required.
var trafficSplitCRD = controller.SplitCRD.Name

// crdRequirement is a CRD the enabled roles need, and which of its
// versions.
type crdRequirement struct {
	name, group, plural string
	// versions are the API versions crossmap can use; one must be served.
	versions []string
	level    Level
	// missingFix says how to install it.
	missingFix string
	// note follows a warning or a failure: who needs it, or what does not
	// work without it.
	note string
	// roles are the enabled roles that use it.
	roles []string
}

// crdRequirements are the CRDs the roles of roles need, from the table the
// controller checks at its start (controller.Config.Needs), each once, with
// the roles that use it. A required one's fix says how to install it or
// which roles to turn off instead.
func crdRequirements(roles controller.Config) []crdRequirement {
	var out []crdRequirement
	offs := map[string][]string{}
	at := map[string]int{}
	for _, n := range roles.Needs() {
		for _, c := range n.CRDs {
			i, ok := at[c.Name]
			if !ok {
				level := LevelFail
				if c.Optional {
					level = LevelWarn
				}
				out = append(out, crdRequirement{name: c.Name, group: c.Group, plural: c.Plural, versions: c.Versions,
					level: level, missingFix: c.Install, note: c.Note})
				i = len(out) - 1
				at[c.Name] = i
			}
			out[i].roles = append(out[i].roles, n.Role)
			offs[c.Name] = append(offs[c.Name], n.Off)
		}
	}
	for i, req := range out {
		if req.level == LevelFail {
			out[i].note = rolesPhrase(req.roles) + " need it"
			if len(req.roles) == 1 {
				out[i].note = rolesPhrase(req.roles) + " needs it"
			}
			out[i].missingFix += ", or run the controller with " + strings.Join(offs[req.name], " ")
		}
	}
	return out
}

// rolesPhrase is "the export role", "the export and route roles".
func rolesPhrase(roles []string) string {
	switch len(roles) {
	case 0:
		return "no role"
	case 1:
		return "the " + roles[0] + " role"
	}
	return "the " + strings.Join(roles[:len(roles)-1], ", ") + " and " + roles[len(roles)-1] + " roles"
}

// checkCRDs checks that each CRD crossmap needs is established and serves a
// version crossmap speaks, and returns which are.
func checkCRDs(ctx context.Context, c client.Client, cs kubernetes.Interface, ch *checker, roles controller.Config) map[string]bool {
	found := map[string]bool{}
	for _, req := range crdRequirements(roles) {
		var crd apiextensionsv1.CustomResourceDefinition
		err := c.Get(ctx, client.ObjectKey{Name: req.name}, &crd)
		switch {
		case err == nil:
			found[req.name] = checkCRD(ch, req, &crd)
		case apierrors.IsNotFound(err):
			ch.bad(req.level, withNote("CRD "+req.name+" is not installed", req.note), req.missingFix)
		case apierrors.IsForbidden(err):
			// Reading CRDs is a cluster admin's right; discovery is
			// everybody's, and lists only what is established and served.
			found[req.name] = checkCRDDiscovery(cs, ch, req)
		default:
			ch.bad(req.level, fmt.Sprintf("cannot read CRD %s: %v", req.name, err), "check that the API server is healthy and run the check again")
		}
	}
	return found
}

func withNote(msg, note string) string {
	if note == "" {
		return msg
	}
	return msg + ": " + note
}

func checkCRD(ch *checker, req crdRequirement, crd *apiextensionsv1.CustomResourceDefinition) bool {
	if !crdCondition(crd, apiextensionsv1.Established) {
		reason := "not established yet"
		if cond := findCRDCondition(crd, apiextensionsv1.NamesAccepted); cond != nil && cond.Status != apiextensionsv1.ConditionTrue {
			reason = "not established: its names are not accepted: " + cond.Message
		}
		ch.bad(req.level, fmt.Sprintf("CRD %s exists but is %s", req.name, reason),
			"kubectl describe crd "+req.name+" shows why; a names conflict with another CRD is the usual cause")
		return false
	}
	var served []string
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Served {
			served = append(served, v.Name)
		}
		if v.Storage {
			storage = v.Name
		}
	}
	use := ""
	for _, v := range req.versions {
		if slices.Contains(served, v) {
			use = v
			break
		}
	}
	if use == "" {
		ch.bad(req.level, withNote(fmt.Sprintf("CRD %s serves %s, not %s", req.name, strings.Join(served, ", "), strings.Join(req.versions, " or ")), req.note), req.missingFix)
		return false
	}
	ch.ok("CRD %s is established and serves %s (served: %s; stored as %s), for %s", req.name, use, strings.Join(served, ", "), storage, rolesPhrase(req.roles))
	return true
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	cond := findCRDCondition(crd, typ)
	return cond != nil && cond.Status == apiextensionsv1.ConditionTrue
}

func findCRDCondition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) *apiextensionsv1.CustomResourceDefinitionCondition {
	for i := range crd.Status.Conditions {
		if crd.Status.Conditions[i].Type == typ {
			return &crd.Status.Conditions[i]
		}
	}
	return nil
}

// checkCRDDiscovery is checkCRD for an identity that may not read CRDs:
// the API server's discovery lists the versions it serves.
func checkCRDDiscovery(cs kubernetes.Interface, ch *checker, req crdRequirement) bool {
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		ch.bad(req.level, fmt.Sprintf("cannot list the API server's groups: %v", err), "check that the API server is healthy and run the check again")
		return false
	}
	var served []string
	for _, g := range groups.Groups {
		if g.Name != req.group {
			continue
		}
		for _, v := range g.Versions {
			rs, err := cs.Discovery().ServerResourcesForGroupVersion(v.GroupVersion)
			if err != nil {
				continue
			}
			if slices.ContainsFunc(rs.APIResources, func(r metav1.APIResource) bool { return r.Name == req.plural }) {
				served = append(served, v.Version)
			}
		}
	}
	if len(served) == 0 {
		ch.bad(req.level, withNote("CRD "+req.name+" is not installed (or not established)", req.note), req.missingFix)
		return false
	}
	for _, v := range req.versions {
		if slices.Contains(served, v) {
			ch.ok("CRD %s is established and serves %s (served: %s; seen through discovery: this identity may not read CRDs), for %s", req.name, v, strings.Join(served, ", "), rolesPhrase(req.roles))
			return true
		}
	}
	ch.bad(req.level, withNote(fmt.Sprintf("CRD %s serves %s, not %s", req.name, strings.Join(served, ", "), strings.Join(req.versions, " or ")), req.note), req.missingFix)
	return false
}

// Permission is one resource the controller uses, with the verbs it needs.
type Permission struct {
	Group, Resource, Subresource string
	// Name limits the permission to one object, as an RBAC rule's
	// resourceNames does; "" means every object.
	Name  string
	Verbs []string
	// Namespace is where the permission is needed; "" means every
	// namespace.
	Namespace string
	// ClusterScoped is set for a resource that lives in no namespace.
	ClusterScoped bool
	// Why says what needs it.
	Why string
	// Level is LevelWarn for what only optional features need.
	Level Level
}

// kubectlResource is the resource as kubectl create role takes it.
func (p Permission) kubectlResource() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	return r
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += " (" + p.Group + ")"
	}
	if p.Name != "" {
		r += " " + p.Name
	}
	switch {
	case p.ClusterScoped:
		return r
	case p.Namespace == "":
		return r + " in all namespaces"
	}
	return r + " in namespace " + p.Namespace
}

// ControllerPermissions lists what `crossmap controller --namespace
// namespace` does with each resource (internal/controller; manifests/rbac
// grants exactly these): it reads through informers, which list and watch
// and never get, writes by server-side apply, which is a patch and also
// needs create for a new object, and prunes what it owns (delete). Without
// the TrafficSplit CRD, TrafficSplits are not needed. The trust role
// (cross-cluster mTLS) writes three Secrets of fixed names, so its patch is
// asked for by name, as manifests/rbac grants it; a create cannot be
// limited by name in RBAC.
func ControllerPermissions(namespace string, trafficSplits bool) []Permission {
	read := []string{"list", "watch"}
	write := []string{"list", "watch", "create", "patch", "delete"}
	splitLevel := LevelFail
	if !trafficSplits {
		splitLevel = LevelWarn
	}
	return []Permission{
		{Resource: "services", Verbs: write, Why: "exported Services are read, mirrors written", Level: LevelFail},
		{Group: "discovery.k8s.io", Resource: "endpointslices", Verbs: write, Why: "endpoints are read for health, mirrors written", Level: LevelFail},
		{Resource: "namespaces", ClusterScoped: true, Verbs: []string{"list", "watch", "create", "patch"}, Why: "a mirror needs its namespace, which a Link with createNamespaces creates", Level: LevelFail},
		{Group: "getambassador.io", Resource: "mappings", Verbs: write, Why: "annotated Mappings are read, gateway and sibling Mappings written", Level: LevelFail},
		{Group: "getambassador.io", Resource: "hosts", Verbs: read, Why: "Hosts are read to check what generated Mappings bind to", Level: LevelFail},
		{Group: "getambassador.io", Resource: "hosts", Verbs: []string{"create", "patch", "delete"}, Namespace: namespace, Why: "the gateway Host is written", Level: LevelFail},
		{Group: "split.smi-spec.io", Resource: "trafficsplits", Verbs: write, Why: "TrafficSplits are written for crossmap.io/traffic-split", Level: splitLevel},
		{Group: crossmapv1.GroupVersion.Group, Resource: "links", Verbs: read, Namespace: namespace, Why: "Links are the import role's input", Level: LevelFail},
		{Group: crossmapv1.GroupVersion.Group, Resource: "links", Subresource: "status", Verbs: []string{"patch"}, Namespace: namespace, Why: "Link conditions are reported", Level: LevelFail},
		{Resource: "secrets", Verbs: []string{"list", "watch", "create"}, Namespace: namespace, Why: "Links' credentials and the trust anchor are read, and the trust role writes the certificates it issues", Level: LevelFail},
		{Resource: "secrets", Name: ingress.GatewayCertSecret, Verbs: []string{"patch"}, Namespace: namespace, Why: "the trust role issues and renews the gateway certificate", Level: LevelFail},
		{Resource: "secrets", Name: ingress.ClientCertSecret, Verbs: []string{"patch"}, Namespace: namespace, Why: "the trust role issues and renews the client certificate", Level: LevelFail},
		{Resource: "secrets", Name: ingress.TrustCASecret, Verbs: []string{"patch"}, Namespace: namespace, Why: "the trust role publishes the trust anchor's certificate for Emissary", Level: LevelFail},
		{Group: "getambassador.io", Resource: "tlscontexts", Verbs: write, Namespace: namespace, Why: "the trust role writes the TLSContext each linked cluster's routes originate mutual TLS with", Level: LevelFail},
		{Group: mcsv1beta1.GroupName, Resource: mcsv1beta1.ServiceExportPluralName, Verbs: read, Why: "ServiceExports are the MCS role's input", Level: LevelFail},
		{Group: mcsv1beta1.GroupName, Resource: mcsv1beta1.ServiceExportPluralName, Subresource: "status", Verbs: []string{"patch"}, Why: "the MCS role sets the conditions of this cluster's ServiceExports", Level: LevelFail},
		{Group: mcsv1beta1.GroupName, Resource: mcsv1beta1.ServiceImportPluralName, Verbs: write, Why: "the MCS role writes the ServiceImports", Level: LevelFail},
		{Group: mcsv1beta1.GroupName, Resource: mcsv1beta1.ServiceImportPluralName, Subresource: "status", Verbs: []string{"patch"}, Why: "the MCS role writes the ServiceImports' status", Level: LevelFail},
		{Resource: "events", Verbs: []string{"create", "patch"}, Why: "problems and failovers are recorded as Events", Level: LevelFail},
		{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"get", "create", "update"}, Namespace: namespace, Why: "leader election with --leader-elect", Level: LevelFail},
	}
}

// forRoles drops the permissions on custom resources that no role roles
// enables uses (Config.Needs): a mirroring-only controller is not asked
// about Mappings.
func forRoles(perms []Permission, roles controller.Config) []Permission {
	used := map[string]bool{}
	custom := map[string]bool{}
	for _, crd := range []controller.CRD{controller.LinkCRD, controller.MappingCRD, controller.HostCRD, controller.TLSContextCRD, controller.SplitCRD,
		controller.ServiceExportCRD, controller.ServiceImportCRD} {
		custom[crd.Group+"/"+crd.Plural] = true
	}
	for _, n := range roles.Needs() {
		for _, crd := range n.CRDs {
			used[crd.Group+"/"+crd.Plural] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(perms), func(p Permission) bool {
		key := p.Group + "/" + p.Resource
		return custom[key] && !used[key]
	})
}

// checkRBAC asks the API server, one SelfSubjectAccessReview per verb,
// whether the identity may do what the controller does.
func checkRBAC(ctx context.Context, cs kubernetes.Interface, ch *checker, perms []Permission, user string) {
	for _, p := range perms {
		var denied []string
		var reviewErr error
		for _, verb := range p.Verbs {
			review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: p.Namespace, Verb: verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Name: p.Name,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				reviewErr = err
				break
			}
			if !review.Status.Allowed {
				denied = append(denied, verb)
			}
		}
		switch {
		case reviewErr != nil:
			ch.bad(p.Level, fmt.Sprintf("cannot review access to %s: %v", p, reviewErr), "check that the API server is healthy and run the check again")
		case len(denied) > 0:
			ch.bad(p.Level, fmt.Sprintf("RBAC: may not %s %s (needed: %s)", strings.Join(denied, ", "), p, p.Why), grantCommand(p, denied, user))
		default:
			ch.ok("RBAC: may %s %s", strings.Join(p.Verbs, ", "), p)
		}
	}
}

// grantCommand is the kubectl command that grants verbs on p to user.
func grantCommand(p Permission, verbs []string, user string) string {
	name := "crossmap-" + p.Resource
	if p.Subresource != "" {
		name += "-" + p.Subresource
	}
	if p.Name != "" {
		name += "-" + p.Name
	}
	subject := "--user=" + cmp.Or(user, "<controller user>")
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		subject = "--serviceaccount=" + rest
	}
	role := fmt.Sprintf("--verb=%s --resource=%s", strings.Join(verbs, ","), p.kubectlResource())
	if p.Name != "" {
		role += " --resource-name=" + p.Name
	}
	if p.Namespace == "" {
		return fmt.Sprintf("kubectl create clusterrole %s %s && kubectl create clusterrolebinding %s --clusterrole=%s %s",
			name, role, name, name, subject)
	}
	return fmt.Sprintf("kubectl create role %s -n %s %s && kubectl create rolebinding %s -n %s --role=%s %s",
		name, p.Namespace, role, name, p.Namespace, name, subject)
}

// checkLinks checks, for each Link in namespace, that its credentials reach
// the remote API server and may list what the import role reads there.
func checkLinks(ctx context.Context, c client.Client, ch *checker, namespace string) {
	var ns corev1.Namespace
	err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns)
	switch {
	case apierrors.IsNotFound(err):
		ch.bad(LevelFail, fmt.Sprintf("namespace %s does not exist", namespace),
			fmt.Sprintf("kubectl create namespace %s, or pass the controller's --namespace", namespace))
		return
	case err != nil && !apierrors.IsForbidden(err):
		// Forbidden is reported by the RBAC checks; the Links may still be
		// readable.
		ch.bad(LevelFail, fmt.Sprintf("cannot read namespace %s: %v", namespace, err), "check that the API server is healthy and run the check again")
		return
	}
	var links crossmapv1.LinkList
	if err := c.List(ctx, &links, client.InNamespace(namespace)); err != nil {
		fix := "check that the API server is healthy and run the check again"
		if apierrors.IsForbidden(err) {
			fix = "grant list on links (see the RBAC checks above)"
		}
		ch.bad(LevelFail, fmt.Sprintf("cannot list the Links in namespace %s: %v", namespace, err), fix)
		return
	}
	if len(links.Items) == 0 {
		ch.ok("no Links in namespace %s yet (add one with 'crossmap link NAME --kubeconfig FILE --apply')", namespace)
		return
	}
	for i := range links.Items {
		checkLink(ctx, c, ch, &links.Items[i])
	}
}

func checkLink(ctx context.Context, c client.Client, ch *checker, l *crossmapv1.Link) {
	what := fmt.Sprintf("Link %s (cluster %s)", l.Name, l.Spec.ClusterName)
	relink := fmt.Sprintf("issue new credentials with 'crossmap link %s --kubeconfig <admin kubeconfig of %s> --namespace %s --apply'",
		l.Spec.ClusterName, l.Spec.ClusterName, l.Namespace)
	key := cmp.Or(l.Spec.CredentialsSecret.Key, crossmapv1.DefaultCredentialsKey)
	secret, err := readSecret(ctx, c, l.Namespace, l.Spec.CredentialsSecret.Name)
	switch {
	case apierrors.IsForbidden(err):
		ch.bad(LevelFail, fmt.Sprintf("%s: cannot read its Secret: %v", what, err), "grant list on secrets in namespace "+l.Namespace+" (see the RBAC checks above)")
		return
	case err != nil:
		ch.bad(LevelFail, fmt.Sprintf("%s: cannot read its Secret: %v", what, err), "check that the API server is healthy and run the check again")
		return
	case secret == nil:
		ch.bad(LevelFail, fmt.Sprintf("%s: its Secret %s/%s does not exist", what, l.Namespace, l.Spec.CredentialsSecret.Name), relink)
		return
	}
	kubeconfig, ok := secret.Data[key]
	if !ok {
		ch.bad(LevelFail, fmt.Sprintf("%s: Secret %s/%s has no key %q (keys: %s)", what, secret.Namespace, secret.Name, key, strings.Join(sortedKeys(secret.Data), ", ")),
			"set spec.credentialsSecret.key to the key holding the kubeconfig, or "+relink)
		return
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		ch.bad(LevelFail, fmt.Sprintf("%s: Secret %s/%s key %q is not a usable kubeconfig: %v", what, secret.Namespace, secret.Name, key, err), relink)
		return
	}
	cfg.Timeout = checkTimeout
	rcs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		ch.bad(LevelFail, fmt.Sprintf("%s: %v", what, err), relink)
		return
	}
	remoteFix := func(err error) string {
		switch {
		case apierrors.IsUnauthorized(err):
			return "the remote API server rejects the credentials (token expired, or its ServiceAccount deleted?): " + relink
		case apierrors.IsForbidden(err):
			return "the credentials need get, list and watch on services and discovery.k8s.io endpointslices; " + relink
		}
		return fmt.Sprintf("check that %s is reachable from here and from the controller's pods (address, firewall, VPN); the controller retries on its own", cfg.Host)
	}
	if _, err := rcs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		ch.bad(LevelFail, fmt.Sprintf("%s: remote API server %s is not ready: %v", what, cfg.Host, err), remoteFix(err))
		return
	}
	if _, err := rcs.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		ch.bad(LevelFail, fmt.Sprintf("%s: cannot list services in %s: %v", what, cfg.Host, err), remoteFix(err))
		return
	}
	if _, err := rcs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		ch.bad(LevelFail, fmt.Sprintf("%s: cannot list endpointslices in %s: %v", what, cfg.Host, err), remoteFix(err))
		return
	}
	ch.ok("%s: remote API server %s is ready, and the credentials list services and endpointslices", what, cfg.Host)
}

// trustAnchorWarnBefore is how long before its expiry the trust anchor is
// a warning: time enough to roll a new one out to every linked cluster.
const trustAnchorWarnBefore = 30 * 24 * time.Hour

// readSecret reads one Secret by listing its namespace with a field
// selector: the controller may list and watch Secrets in its namespace, but
// not get them (its cache never gets), so that `check --as` the controller
// reads what the controller reads. It returns nil, nil when there is no
// such Secret.
func readSecret(ctx context.Context, c client.Client, namespace, name string) (*corev1.Secret, error) {
	var list corev1.SecretList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{"metadata.name": name}); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// trustGenerateCommand is how to make the trust anchor Secret the
// controller looks for. The namespace is passed to `trust generate`, not to
// kubectl: the printed Secret names its namespace, and kubectl refuses a
// -n that differs from it.
func trustGenerateCommand(namespace, name string) string {
	cmd := "crossmap trust generate --namespace " + namespace
	if name != DefaultTrustOptions().Name {
		cmd += " --name " + name
	}
	return cmd + " | kubectl apply -f -"
}

// checkTrustAnchor checks the trust anchor Secret crossmap issues the
// cluster's mTLS certificates from.
func checkTrustAnchor(ctx context.Context, c client.Client, ch *checker, namespace, name string, now time.Time) {
	secret, err := readSecret(ctx, c, namespace, name)
	what := fmt.Sprintf("trust anchor Secret %s/%s", namespace, name)
	switch {
	case apierrors.IsForbidden(err):
		ch.bad(LevelFail, fmt.Sprintf("cannot read the %s: %v", what, err), "grant list on secrets in namespace "+namespace+" (see the RBAC checks above)")
	case err != nil:
		ch.bad(LevelFail, fmt.Sprintf("cannot read the %s: %v", what, err), "check that the API server is healthy and run the check again")
	default:
		v := trustAnchorVerdict(secret, namespace, name, now)
		if v.level == LevelOK {
			ch.ok("%s", v.msg)
		} else {
			ch.bad(v.level, v.msg, v.fix)
		}
	}
}

// verdict is one check's outcome.
type verdict struct {
	level    Level
	msg, fix string
}

// trustAnchorVerdict judges the trust anchor Secret (nil: there is none):
// present, a usable CA, and not expired nor about to.
func trustAnchorVerdict(secret *corev1.Secret, namespace, name string, now time.Time) verdict {
	what := fmt.Sprintf("trust anchor Secret %s/%s", namespace, name)
	generate := trustGenerateCommand(namespace, name)
	if secret == nil {
		return verdict{LevelFail,
			what + " does not exist: cross-cluster mTLS cannot start (no gateway or client certificate is issued, and no route to another cluster works)",
			fmt.Sprintf("create it with '%s' and apply the same Secret in every linked cluster (make it once, apply it everywhere), or run the controller with --insecure-cleartext on dev clusters", generate)}
	}
	ca, err := pki.ParseAuthority(secret.Data[pki.CACertKey], secret.Data[pki.CAKeyKey])
	if err != nil {
		return verdict{LevelFail, fmt.Sprintf("%s is not a usable CA (keys %s and %s): %v", what, pki.CACertKey, pki.CAKeyKey, err),
			fmt.Sprintf("put back the trust anchor every linked cluster shares, or make a new one with '%s' and apply it in every linked cluster", generate)}
	}
	cert := ca.Cert
	subject := fmt.Sprintf("CA %q", cert.Subject.CommonName)
	expiry := cert.NotAfter.UTC().Format(time.RFC3339)
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		return verdict{LevelFail, fmt.Sprintf("%s: %s expired on %s", what, subject, expiry),
			fmt.Sprintf("make a new trust anchor with '%s' and apply it in every linked cluster", generate)}
	case left < trustAnchorWarnBefore:
		return verdict{LevelWarn, fmt.Sprintf("%s: %s expires on %s, in %s", what, subject, expiry, days(left)),
			"rotate it before then, one step at a time in every linked cluster: append a new CA to ca.crt; then put the new CA first with its key in ca.key (crossmap re-issues from it); then drop the old CA"}
	}
	return verdict{LevelOK, fmt.Sprintf("%s holds %s, valid until %s (%s)", what, subject, expiry, days(cert.NotAfter.Sub(now))), ""}
}

// days is a long duration in days, the unit certificate lifetimes are
// thought of in.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	switch {
	case n == 1:
		return "1 day"
	case n < 1:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", n)
}
