package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// Two planes start side by side on a small machine; envtest's 20 s
	// default has been seen to be tight for kube-apiserver there.
	startTimeout = time.Minute
	// kube-apiserver ends its watches as it stops (see startPlane) and
	// then stops within a second; etcd well within it too. A process that
	// does not is killed after stopTimeout, and Stop reports it.
	stopTimeout = 3 * time.Second
	// rbacTimeout bounds the wait for a new RoleBinding to reach the
	// API server's authorizer cache.
	rbacTimeout = 30 * time.Second
)

// AuditedGroup is the group whose writes a plane's API server records in
// its audit log (see Plane.AuditLogPath). Only users given it through
// Kubeconfig are audited, so the log holds nothing of the tests' own
// traffic and costs the server next to nothing.
const AuditedGroup = "crossmap:bench-audited"

// auditPolicy logs each write (mutating verb) of AuditedGroup as one line:
// Metadata is enough to count and name a write, and omitting the stages
// before ResponseComplete leaves one event per request. (ResponseStarted
// only ever comes with long-running requests, which no write is; omitting
// it too makes "one line per request" hold by construction.)
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  userGroups: ["` + AuditedGroup + `"]
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`

// Plane is one running control plane: a kube-apiserver and its etcd.
type Plane struct {
	// Name is the cluster name given to Start ("east", "west", ...).
	Name string
	// Config is an admin (system:masters) config. It keeps working across
	// StopAPIServer/StartAPIServer, which keep the address and the CAs.
	Config *rest.Config

	env      *envtest.Environment
	admin    client.Client // client-go scheme: RBAC and access reviews
	certDir  string        // ours, not envtest's, so a restart keeps it
	auditLog string        // in certDir

	// mu serialises the API server's stop and start with each other and
	// with AddUser, which reads the state a start rewrites.
	mu      sync.Mutex
	stopped bool // the API server alone is stopped
}

func startPlane(name, assetsDir string, crds []*apiextensionsv1.CustomResourceDefinition, out io.Writer) (*Plane, error) {
	// envtest removes a cert dir it created itself when the API server stops,
	// which would mint a new serving CA, client CA and port on restart and
	// invalidate every kubeconfig handed out. A dir we own survives.
	certDir, err := os.MkdirTemp("", "crossmap-testenv-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("start plane %s: %w", name, err)
	}
	apiServer := &envtest.APIServer{
		// Explicit paths: envtest would prefer $KUBEBUILDER_ASSETS
		// over BinaryAssetsDirectory, and Options.AssetsDir wins here.
		Path:    filepath.Join(assetsDir, "kube-apiserver"),
		CertDir: certDir,
		Out:     out,
		Err:     out,
	}
	// envtest's default /24 holds about 250 ClusterIP Services; the scale
	// benchmarks mirror a thousand.
	apiServer.Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	// On SIGTERM kube-apiserver shuts its HTTP server down gracefully: it
	// waits, up to its request timeout (60 s), for every connection to go
	// idle. An open watch never goes idle unless the server ends it, which
	// it does only with a watch termination grace period. Without one, any
	// client still watching at Stop (a controller a failed test left
	// behind, a `kubectl get -w` through the demo's kubeconfig) held the
	// server past stopTimeout, and Stop failed with "timeout waiting for
	// process kube-apiserver to stop" (TestStopWithOpenWatch).
	apiServer.Configure().Set("shutdown-watch-termination-grace-period", "1s")
	auditLog, err := configureAudit(apiServer, certDir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start plane %s: %w", name, err), os.RemoveAll(certDir))
	}
	env := &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			APIServer: apiServer,
			Etcd:      &envtest.Etcd{Path: filepath.Join(assetsDir, "etcd")},
		},
		CRDInstallOptions:        envtest.CRDInstallOptions{CRDs: crds},
		UseExistingCluster:       new(false), // never a real cluster, whatever USE_EXISTING_CLUSTER says
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start leaves the processes running when only the CRD install failed.
		return nil, errors.Join(fmt.Errorf("start plane %s: %w", name, err), env.Stop(), os.RemoveAll(certDir))
	}
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start plane %s: admin client: %w", name, err), env.Stop(), os.RemoveAll(certDir))
	}
	return &Plane{Name: name, Config: cfg, env: env, admin: admin, certDir: certDir, auditLog: auditLog}, nil
}

// configureAudit writes the audit policy into certDir and points the API
// server's audit log there too, so that both outlive a restart (which
// re-applies the same flags) and go with the plane.
func configureAudit(apiServer *envtest.APIServer, certDir string) (logPath string, err error) {
	policy := filepath.Join(certDir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return "", fmt.Errorf("write audit policy: %w", err)
	}
	logPath = filepath.Join(certDir, "audit.log")
	args := apiServer.Configure()
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", logPath)
	// Blocking (the default, set to say so): the server writes each event
	// synchronously as its request completes, so a write is on disk
	// moments after the client has its answer, not a batch later.
	args.Set("audit-log-mode", "blocking")
	// No rotation, so a reader following the file by offset never sees it
	// renamed away. kube-apiserver v1.37 then appends to a plain file;
	// older ones read 0 as lumberjack's default of 100 MB.
	args.Set("audit-log-maxsize", "0")
	return logPath, nil
}

// AuditLogPath is the file where the plane's API server logs the writes of
// users in AuditedGroup: one JSON line per request, an audit.k8s.io/v1
// Event at level Metadata (user, verb, URI, response code, timestamps),
// appended as each request completes. It exists so that benchmarks can
// count a controller's API writes at the server, for next to no CPU of
// the machine they measure, where a counting proxy in the test process cost
// seconds of it. The file survives StopAPIServer/StartAPIServer (the server
// appends) and is removed when the plane stops.
func (p *Plane) AuditLogPath() string { return p.auditLog }

// Client returns an admin client for the plane. A nil scheme means client-go's
// built-in types only; pass one with Emissary's or crossmap's types added to
// use those.
func (p *Plane) Client(scheme *runtime.Scheme) (client.Client, error) {
	c, err := client.New(rest.CopyConfig(p.Config), client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("new client for plane %s: %w", p.Name, err)
	}
	return c, nil
}

// Kubeconfig returns a kubeconfig (YAML) for a new user of the plane who
// authenticates with a client certificate signed by the plane's client CA.
// The user has no permissions beyond discovery until RBAC grants some. The
// cluster and context are named after the plane, the user "<user>@<plane>",
// so kubeconfigs of several planes can be merged.
func (p *Plane) Kubeconfig(user string, groups []string) ([]byte, error) {
	p.mu.Lock()
	u, err := p.env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	var cfg *rest.Config
	if err == nil {
		cfg = u.Config()
	}
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("add user %s to plane %s: %w", user, p.Name, err)
	}

	authInfo := user + "@" + p.Name
	kc := clientcmdapi.NewConfig()
	kc.Clusters[p.Name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[authInfo] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[p.Name] = &clientcmdapi.Context{Cluster: p.Name, AuthInfo: authInfo}
	kc.CurrentContext = p.Name
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("write kubeconfig for %s on plane %s: %w", user, p.Name, err)
	}
	return data, nil
}

// ReadOnlyKubeconfig returns a kubeconfig for user, who may only get, list
// and watch Services, EndpointSlices and ServiceExports: the credentials a
// Link to this plane carries (those `crossmap link` mints). It grants that with a ClusterRole and ClusterRoleBinding (created
// or updated, so calling it twice is fine) and returns once the API server's
// authorizer has picked the binding up, so the caller need not poll.
func (p *Plane) ReadOnlyKubeconfig(ctx context.Context, user string) ([]byte, error) {
	name := "crossmap-testenv:read-only:" + user
	read := []string{"get", "list", "watch"}

	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, p.admin, role, func() error {
		role.Rules = []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceexports"}, Verbs: read},
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("grant read-only access to %s on plane %s: cluster role: %w", user, p.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, p.admin, binding, func() error {
		binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
		binding.Subjects = []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("grant read-only access to %s on plane %s: cluster role binding: %w", user, p.Name, err)
	}

	// The authorizer reads RBAC from an informer, so the binding takes
	// effect a moment after the create returns.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, rbacTimeout, true, func(ctx context.Context) (bool, error) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: "discovery.k8s.io", Resource: "endpointslices", Verb: "watch",
			},
		}}
		if err := p.admin.Create(ctx, review); err != nil {
			return false, err
		}
		return review.Status.Allowed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for read-only access of %s on plane %s: %w", user, p.Name, err)
	}
	return p.Kubeconfig(user, nil)
}

// StopAPIServer stops the plane's kube-apiserver and nothing else: etcd and
// all data stay, and StartAPIServer brings the server back on the same
// address with the same certificates. Stopping a stopped server is a no-op.
func (p *Plane) StopAPIServer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	stopErr := p.env.ControlPlane.APIServer.Stop()
	// A stop that timed out ended in SIGKILL: the server is gone all the
	// same once its port is closed, and the restart must wait for that.
	addr := p.env.ControlPlane.APIServer.SecureServing.ListenAddr.HostPort()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return true, nil
		}
		c.Close()
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("stop API server of plane %s: still listening on %s: %w", p.Name, addr, errors.Join(stopErr, err))
	}
	p.stopped = true
	return nil
}

// StartAPIServer restarts a kube-apiserver stopped by StopAPIServer and
// returns once it reports healthy. Existing kubeconfigs and Config keep
// working: the restart reuses the listen address and port, the serving
// certificate and CA (left in our cert dir) and the client CA (kept in
// memory by envtest). Starting a running server is a no-op; envtest would
// otherwise lose track of the running process and start a second one.
func (p *Plane) StartAPIServer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		return nil
	}
	if err := p.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("restart API server of plane %s: %w", p.Name, err)
	}
	p.stopped = false
	return nil
}

// stop stops the whole plane and removes its cert dir.
func (p *Plane) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if err := p.env.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop plane %s: %w", p.Name, err))
	}
	if err := os.RemoveAll(p.certDir); err != nil {
		errs = append(errs, fmt.Errorf("stop plane %s: %w", p.Name, err))
	}
	return errors.Join(errs...)
}
