package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Defaults of `crossmap link`.
const (
	DefaultNamespace      = "crossmap-system"
	DefaultServiceAccount = "crossmap-remote"
	DefaultTokenDuration  = 365 * 24 * time.Hour
	// RemoteReaderRole is the ClusterRole `crossmap link` grants in the
	// remote cluster: get, list and watch on Services, EndpointSlices and
	// ServiceExports, and nothing else.
	RemoteReaderRole = "crossmap-remote-reader"
	// minTokenDuration is the shortest token the TokenRequest API issues.
	minTokenDuration = 10 * time.Minute
	// maxClusterName is the longest Link clusterName the CRD accepts.
	maxClusterName = 30
	// apiTimeout bounds each request to an API server.
	apiTimeout = 30 * time.Second
)

// RemoteReaderRules are the only rights the credentials `crossmap link`
// mints carry: what the import role reads of a remote cluster, and the
// ServiceExports the MCS role reads there (a remote without the MCS CRDs
// simply has none: the rule grants nothing then).
func RemoteReaderRules() []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: read},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		{APIGroups: []string{mcsv1beta1.GroupName}, Resources: []string{mcsv1beta1.ServiceExportPluralName}, Verbs: read},
	}
}

// LinkOptions is what `crossmap link` can be told.
type LinkOptions struct {
	// Name is the remote cluster's name: the Link's name and clusterName.
	Name string
	// Kubeconfig and Context reach the remote cluster as an admin.
	Kubeconfig, Context string
	// Namespace is the local namespace of the Link and its Secret (the
	// controller's --namespace).
	Namespace string
	// GatewayAddresses and GatewayPort are where the remote gateway listens.
	GatewayAddresses []string
	GatewayPort      int
	// Mode is gateway or flat.
	Mode string
	// Apply writes the Secret and Link into the local cluster instead of
	// printing them.
	Apply bool
	// LocalKubeconfig and LocalContext reach the local cluster; empty means
	// the usual loading rules ($KUBECONFIG, ~/.kube/config).
	LocalKubeconfig, LocalContext string
	// ServiceAccount and RemoteNamespace name the remote ServiceAccount the
	// credentials are for.
	ServiceAccount, RemoteNamespace string
	// TokenDuration is how long the minted token is valid.
	TokenDuration time.Duration
}

// DefaultLinkOptions returns the defaults the flags start from.
func DefaultLinkOptions() LinkOptions {
	return LinkOptions{
		Namespace:       DefaultNamespace,
		GatewayPort:     crossmapv1.DefaultGatewayPort,
		Mode:            string(crossmapv1.ModeGateway),
		ServiceAccount:  DefaultServiceAccount,
		RemoteNamespace: DefaultNamespace,
		TokenDuration:   DefaultTokenDuration,
	}
}

// BindFlags registers the flags of `crossmap link` on fs. The cluster name
// is an argument, not a flag.
func (o *LinkOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the REMOTE cluster, with rights to create a namespace, a ServiceAccount, a ClusterRole and its binding there (required)")
	fs.StringVar(&o.Context, "context", o.Context, "context of --kubeconfig to use (default: its current context)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "LOCAL namespace of the Link and its Secret: the controller's --namespace")
	fs.Func("gateway-address", "IP or DNS name of the remote cluster's gateway (repeatable; required in gateway mode)", func(s string) error {
		o.GatewayAddresses = append(o.GatewayAddresses, s)
		return nil
	})
	fs.IntVar(&o.GatewayPort, "gateway-port", o.GatewayPort, "port of the remote cluster's gateway")
	fs.StringVar(&o.Mode, "mode", o.Mode, "gateway (mirrors point at the remote gateway) or flat (mirrors point at the remote pods)")
	fs.BoolVar(&o.Apply, "apply", o.Apply, "create or update the Secret and the Link in the local cluster instead of printing their YAML")
	fs.StringVar(&o.LocalKubeconfig, "local-kubeconfig", o.LocalKubeconfig, "kubeconfig of the LOCAL cluster for --apply (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.LocalContext, "local-context", o.LocalContext, "context of the local kubeconfig to use for --apply")
	fs.StringVar(&o.ServiceAccount, "service-account", o.ServiceAccount, "ServiceAccount in the remote cluster whose token the credentials carry")
	fs.StringVar(&o.RemoteNamespace, "remote-namespace", o.RemoteNamespace, "namespace of that ServiceAccount in the remote cluster (created if missing)")
	fs.DurationVar(&o.TokenDuration, "token-duration", o.TokenDuration, "how long the token is valid (the API server may cap it); run 'crossmap link' again to renew it")
}

// Validate reports every invalid setting at once. It reads no file and
// talks to no cluster.
func (o *LinkOptions) Validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("the remote cluster's NAME is required, e.g. 'crossmap link east --kubeconfig east.yaml'"))
	} else if err := validateClusterName(o.Name); err != nil {
		errs = append(errs, err)
	}
	if o.Kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required: a kubeconfig of the remote cluster"))
	}
	for flagName, ns := range map[string]string{"--namespace": o.Namespace, "--remote-namespace": o.RemoteNamespace} {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", flagName, ns, strings.Join(msgs, "; ")))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--service-account %q: %s", o.ServiceAccount, strings.Join(msgs, "; ")))
	}
	switch crossmapv1.Mode(o.Mode) {
	case crossmapv1.ModeGateway:
		if len(o.GatewayAddresses) == 0 {
			errs = append(errs, errors.New("--gateway-address is required in gateway mode: the remote gateway's IP or DNS name (or use --mode flat)"))
		}
	case crossmapv1.ModeFlat:
	default:
		errs = append(errs, fmt.Errorf("--mode %q: want gateway or flat", o.Mode))
	}
	seen := map[string]bool{}
	for _, a := range o.GatewayAddresses {
		if seen[a] {
			errs = append(errs, fmt.Errorf("--gateway-address %q is given twice", a))
		}
		seen[a] = true
		if _, err := netip.ParseAddr(a); err == nil {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(a); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--gateway-address %q is neither an IP address nor a DNS name", a))
		}
	}
	if o.GatewayPort < 1 || o.GatewayPort > 65535 {
		errs = append(errs, fmt.Errorf("--gateway-port %d: want 1-65535", o.GatewayPort))
	}
	if o.TokenDuration < minTokenDuration {
		errs = append(errs, fmt.Errorf("--token-duration %s: the TokenRequest API issues tokens of %s or more", o.TokenDuration, minTokenDuration))
	}
	if o.TokenDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("--token-duration %s: want whole seconds", o.TokenDuration))
	}
	if !o.Apply && (o.LocalKubeconfig != "" || o.LocalContext != "") {
		errs = append(errs, errors.New("--local-kubeconfig and --local-context only make sense with --apply"))
	}
	return errors.Join(errs...)
}

// validateClusterName applies the Link CRD's rule for spec.clusterName: a
// DNS label of at most 30 characters, because every mirror is named
// <service>-<clusterName>.
func validateClusterName(name string) error {
	var msgs []string
	msgs = append(msgs, validation.IsDNS1123Label(name)...)
	if len(name) > maxClusterName {
		msgs = append(msgs, fmt.Sprintf("must be no more than %d characters", maxClusterName))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("cluster NAME %q: %s (it becomes the suffix of every mirrored Service, <service>-%s)", name, strings.Join(msgs, "; "), name)
	}
	return nil
}

// RemoteCluster is the remote cluster as the admin kubeconfig describes it.
type RemoteCluster struct {
	// Context is the kubeconfig context used.
	Context string
	// Cluster is the context's cluster entry, with a CA file read into
	// CertificateAuthorityData so that it can travel in a Secret.
	Cluster *clientcmdapi.Cluster
	// Config is the admin's client config.
	Config *rest.Config
}

// LoadRemoteCluster reads the remote admin kubeconfig.
func LoadRemoteCluster(path, context string) (*RemoteCluster, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --kubeconfig: %w", err)
	}
	if err := clientcmd.ResolveLocalPaths(raw); err != nil {
		return nil, fmt.Errorf("read --kubeconfig %s: %w", path, err)
	}
	name := context
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil, fmt.Errorf("--kubeconfig %s has no current context: pass --context", path)
	}
	kctx, ok := raw.Contexts[name]
	if !ok {
		return nil, fmt.Errorf("--kubeconfig %s has no context %q (it has: %s)", path, name, strings.Join(sortedKeys(raw.Contexts), ", "))
	}
	cluster, ok := raw.Clusters[kctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("--kubeconfig %s: context %q names cluster %q, which is not in the file", path, name, kctx.Cluster)
	}
	cluster = cluster.DeepCopy()
	if len(cluster.CertificateAuthorityData) == 0 && cluster.CertificateAuthority != "" {
		ca, err := os.ReadFile(cluster.CertificateAuthority)
		if err != nil {
			return nil, fmt.Errorf("read the CA of cluster %q: %w", kctx.Cluster, err)
		}
		cluster.CertificateAuthorityData = ca
	}
	cluster.CertificateAuthority = ""
	cluster.LocationOfOrigin = ""
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s context %q: %w", path, name, err)
	}
	cfg.Timeout = apiTimeout
	return &RemoteCluster{Context: name, Cluster: cluster, Config: cfg}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// LocalConfig loads the local cluster's client config: kubeconfig if set,
// else the usual loading rules.
func LocalConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load the local kubeconfig: %w", err)
	}
	cfg.Timeout = apiTimeout
	return cfg, nil
}

// LinkCluster does all of `crossmap link`: it grants read-only rights in the
// remote cluster, mints a token, and prints the local Secret and Link (or,
// with Apply, writes them). Progress goes to log, or to out with Apply.
func LinkCluster(ctx context.Context, o LinkOptions, out, log io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	remote, err := LoadRemoteCluster(o.Kubeconfig, o.Context)
	if err != nil {
		return err
	}
	var local client.Client
	var localHost string
	if o.Apply {
		cfg, err := LocalConfig(o.LocalKubeconfig, o.LocalContext)
		if err != nil {
			return err
		}
		if sameServer(cfg.Host, remote.Cluster.Server) {
			return fmt.Errorf("the local cluster (%s) is the remote cluster of --kubeconfig: pass the local cluster's kubeconfig with --local-kubeconfig", cfg.Host)
		}
		if local, err = client.New(cfg, client.Options{Scheme: LocalScheme()}); err != nil {
			return fmt.Errorf("client for the local cluster: %w", err)
		}
		localHost = cfg.Host
	}
	cs, err := kubernetes.NewForConfig(remote.Config)
	if err != nil {
		return fmt.Errorf("client for the remote cluster: %w", err)
	}

	progress := log
	if o.Apply {
		progress = out
	}
	fmt.Fprintf(progress, "Remote cluster %s (%s, context %s):\n", o.Name, remote.Cluster.Server, remote.Context)
	if err := GrantReadOnly(ctx, cs, o.RemoteNamespace, o.ServiceAccount, progress); err != nil {
		return err
	}
	token, expires, err := IssueToken(ctx, cs, o.RemoteNamespace, o.ServiceAccount, o.TokenDuration)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "  token for serviceaccount %s/%s: issued, expires %s\n", o.RemoteNamespace, o.ServiceAccount, expires.UTC().Format(time.RFC3339))
	kubeconfig, err := ReadOnlyKubeconfig(remote.Cluster, o.Name, o.RemoteNamespace, o.ServiceAccount, token)
	if err != nil {
		return err
	}
	if err := VerifyCredentials(ctx, kubeconfig); err != nil {
		// Not fatal: from here the remote may look different than from the
		// controller's pods, and the controller retries on its own.
		fmt.Fprintf(progress, "  warning: the new credentials do not work from here yet: %v; 'crossmap check' tells when they do\n", err)
	} else {
		fmt.Fprintf(progress, "  credentials: verified, they list services and endpointslices\n")
	}
	secret, link := LocalObjects(o, kubeconfig)
	if !o.Apply {
		return WriteManifests(out, secret, link)
	}
	fmt.Fprintf(out, "Local cluster (%s):\n", localHost)
	return ApplyLocal(ctx, local, secret, link, out)
}

// verifyTimeout bounds the wait for a new ClusterRoleBinding to reach the
// remote API server's authorizer.
const verifyTimeout = 15 * time.Second

// VerifyCredentials checks that kubeconfig lists Services and
// EndpointSlices in every namespace. A refusal is retried until
// verifyTimeout, because a new binding takes a moment to be enforced; any
// other error is returned at once.
func VerifyCredentials(ctx context.Context, kubeconfig []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("load the generated kubeconfig: %w", err)
	}
	cfg.Timeout = apiTimeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, verifyTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1})
		if last == nil {
			_, last = cs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1})
		}
		switch {
		case last == nil:
			return true, nil
		case apierrors.IsForbidden(last):
			return false, nil
		}
		return false, last
	})
	if last != nil {
		return last
	}
	return err
}

// sameServer reports whether two API server URLs are the same server.
func sameServer(a, b string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }
	return norm(a) == norm(b)
}

// GrantReadOnly creates or updates, in the remote cluster, the namespace,
// the ServiceAccount, the ClusterRole RemoteReaderRole and a binding of it to
// the ServiceAccount, and reports each to log.
func GrantReadOnly(ctx context.Context, cs kubernetes.Interface, namespace, serviceAccount string, log io.Writer) error {
	labels := map[string]string{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy}
	report := func(kind, name, result string) { fmt.Fprintf(log, "  %s %s: %s\n", kind, name, result) }

	_, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: labels}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s in the remote cluster: %w", namespace, err)
		}
		report("namespace", namespace, "created")
	case err != nil:
		return fmt.Errorf("get namespace %s in the remote cluster: %w", namespace, err)
	default:
		report("namespace", namespace, "unchanged")
	}

	_, err = cs.CoreV1().ServiceAccounts(namespace).Get(ctx, serviceAccount, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceAccount, Labels: labels}}
		if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create serviceaccount %s/%s in the remote cluster: %w", namespace, serviceAccount, err)
		}
		report("serviceaccount", namespace+"/"+serviceAccount, "created")
	case err != nil:
		return fmt.Errorf("get serviceaccount %s/%s in the remote cluster: %w", namespace, serviceAccount, err)
	default:
		report("serviceaccount", namespace+"/"+serviceAccount, "unchanged")
	}

	result, err := ensureClusterRole(ctx, cs, labels)
	if err != nil {
		return err
	}
	report("clusterrole", RemoteReaderRole, result)

	name := BindingName(namespace, serviceAccount)
	result, err = ensureClusterRoleBinding(ctx, cs, name, namespace, serviceAccount, labels)
	if err != nil {
		return err
	}
	report("clusterrolebinding", name, result)
	return nil
}

// BindingName is the name of the ClusterRoleBinding that grants
// RemoteReaderRole to one ServiceAccount.
func BindingName(namespace, serviceAccount string) string {
	return RemoteReaderRole + ":" + namespace + ":" + serviceAccount
}

// ensureClusterRole makes RemoteReaderRole hold exactly RemoteReaderRules:
// rules somebody added by hand are removed, so the credentials stay
// read-only.
func ensureClusterRole(ctx context.Context, cs kubernetes.Interface, labels map[string]string) (string, error) {
	roles := cs.RbacV1().ClusterRoles()
	cur, err := roles.Get(ctx, RemoteReaderRole, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RemoteReaderRole, Labels: labels}, Rules: RemoteReaderRules()}
		if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("create clusterrole %s in the remote cluster: %w", RemoteReaderRole, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("get clusterrole %s in the remote cluster: %w", RemoteReaderRole, err)
	}
	if equality.Semantic.DeepEqual(cur.Rules, RemoteReaderRules()) && cur.AggregationRule == nil && hasLabels(cur.Labels, labels) {
		return "unchanged", nil
	}
	next := cur.DeepCopy()
	next.Rules = RemoteReaderRules()
	next.AggregationRule = nil
	next.Labels = withLabels(next.Labels, labels)
	if _, err := roles.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("update clusterrole %s in the remote cluster: %w", RemoteReaderRole, err)
	}
	return "updated", nil
}

// ensureClusterRoleBinding binds RemoteReaderRole to the ServiceAccount and
// nobody else. A binding's roleRef cannot change, so one that points
// elsewhere is replaced.
func ensureClusterRoleBinding(ctx context.Context, cs kubernetes.Interface, name, namespace, serviceAccount string, labels map[string]string) (string, error) {
	bindings := cs.RbacV1().ClusterRoleBindings()
	want := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RemoteReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: serviceAccount}},
	}
	cur, err := bindings.Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get clusterrolebinding %s in the remote cluster: %w", name, err)
	}
	result := "created"
	if err == nil {
		if equality.Semantic.DeepEqual(cur.RoleRef, want.RoleRef) {
			if equality.Semantic.DeepEqual(cur.Subjects, want.Subjects) && hasLabels(cur.Labels, labels) {
				return "unchanged", nil
			}
			next := cur.DeepCopy()
			next.Subjects = want.Subjects
			next.Labels = withLabels(next.Labels, labels)
			if _, err := bindings.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
				return "", fmt.Errorf("update clusterrolebinding %s in the remote cluster: %w", name, err)
			}
			return "updated", nil
		}
		uid := cur.UID
		if err := bindings.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("replace clusterrolebinding %s in the remote cluster: %w", name, err)
		}
		result = "replaced"
	}
	if _, err := bindings.Create(ctx, want, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create clusterrolebinding %s in the remote cluster: %w", name, err)
	}
	return result, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func withLabels(have, want map[string]string) map[string]string {
	out := make(map[string]string, len(have)+len(want))
	for k, v := range have {
		out[k] = v
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// IssueToken asks the TokenRequest API for a token of the ServiceAccount
// valid for d, and returns it with its expiry (which the API server may
// have shortened).
func IssueToken(ctx context.Context, cs kubernetes.Interface, namespace, serviceAccount string, d time.Duration) (string, time.Time, error) {
	secs := int64(d / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("request a token for serviceaccount %s/%s in the remote cluster: %w", namespace, serviceAccount, err)
	}
	if tr.Status.Token == "" {
		return "", time.Time{}, fmt.Errorf("request a token for serviceaccount %s/%s in the remote cluster: the API server returned an empty token", namespace, serviceAccount)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// ReadOnlyKubeconfig builds the kubeconfig the Link's Secret carries: the
// remote cluster's server and CA, and the ServiceAccount's token.
func ReadOnlyKubeconfig(cluster *clientcmdapi.Cluster, name, namespace, serviceAccount, token string) ([]byte, error) {
	user := serviceAccount + "@" + name
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cluster.Server,
		TLSServerName:            cluster.TLSServerName,
		InsecureSkipTLSVerify:    cluster.InsecureSkipTLSVerify,
		CertificateAuthorityData: cluster.CertificateAuthorityData,
		ProxyURL:                 cluster.ProxyURL,
		DisableCompression:       cluster.DisableCompression,
	}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user, Namespace: namespace}
	kc.CurrentContext = name
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("write the kubeconfig for %s: %w", name, err)
	}
	return data, nil
}

// SecretName is the name of the local Secret holding the credentials for
// the cluster name.
func SecretName(name string) string { return name + "-kubeconfig" }

// LocalObjects renders the local Secret and Link for o.
func LocalObjects(o LinkOptions, kubeconfig []byte) (*corev1.Secret, *crossmapv1.Link) {
	secret := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: SecretName(o.Name),
			Labels: map[string]string{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{crossmapv1.DefaultCredentialsKey: kubeconfig},
	}
	link := &crossmapv1.Link{
		TypeMeta:   metav1.TypeMeta{APIVersion: crossmapv1.GroupVersion.String(), Kind: "Link"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
	}
	setLinkSpec(link, o)
	return secret, link
}

// setLinkSpec sets the fields `crossmap link` owns, leaving the others
// (exportSelector, probe, createNamespaces) as an operator set them.
func setLinkSpec(l *crossmapv1.Link, o LinkOptions) {
	l.Spec.ClusterName = o.Name
	l.Spec.CredentialsSecret = crossmapv1.SecretKeyRef{Name: SecretName(o.Name), Key: crossmapv1.DefaultCredentialsKey}
	l.Spec.Mode = crossmapv1.Mode(o.Mode)
	l.Spec.Gateway.Addresses = slices.Clone(o.GatewayAddresses)
	l.Spec.Gateway.Port = int32(o.GatewayPort)
}

// WriteManifests writes objs as one YAML stream that kubectl apply takes,
// without the status and server-set fields.
func WriteManifests(out io.Writer, objs ...runtime.Object) error {
	for i, obj := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("render %T: %w", obj, err)
		}
		delete(u, "status")
		if md, ok := u["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		data, err := yaml.Marshal(u)
		if err != nil {
			return fmt.Errorf("render %T: %w", obj, err)
		}
		if i > 0 {
			if _, err := io.WriteString(out, "---\n"); err != nil {
				return err
			}
		}
		if _, err := out.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// ApplyLocal creates or updates the namespace, the Secret and the Link in
// the local cluster and reports each to log.
func ApplyLocal(ctx context.Context, c client.Client, secret *corev1.Secret, link *crossmapv1.Link, log io.Writer) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: link.Namespace}}
	err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns)
	switch {
	case apierrors.IsNotFound(err):
		if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s in the local cluster: %w", link.Namespace, err)
		}
		fmt.Fprintf(log, "  namespace %s: created (is the controller's --namespace %s?)\n", link.Namespace, link.Namespace)
	case err != nil:
		return fmt.Errorf("get namespace %s in the local cluster: %w", link.Namespace, err)
	}

	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secret.Namespace, Name: secret.Name}}
	res, err := controllerutil.CreateOrUpdate(ctx, c, s, func() error {
		s.Labels = withLabels(s.Labels, secret.Labels)
		if s.Type == "" {
			s.Type = secret.Type
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range secret.Data {
			s.Data[k] = v
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write secret %s/%s in the local cluster: %w", secret.Namespace, secret.Name, err)
	}
	fmt.Fprintf(log, "  secret %s/%s: %s\n", secret.Namespace, secret.Name, res)

	l := &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: link.Namespace, Name: link.Name}}
	res, err = controllerutil.CreateOrUpdate(ctx, c, l, func() error {
		l.Spec.ClusterName = link.Spec.ClusterName
		l.Spec.CredentialsSecret = link.Spec.CredentialsSecret
		l.Spec.Mode = link.Spec.Mode
		l.Spec.Gateway = link.Spec.Gateway
		return nil
	})
	if err != nil {
		return fmt.Errorf("write link %s/%s in the local cluster: %w", link.Namespace, link.Name, err)
	}
	fmt.Fprintf(log, "  link %s/%s: %s\n", link.Namespace, link.Name, res)
	return nil
}
