package cli

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

func validLinkOptions() LinkOptions {
	o := DefaultLinkOptions()
	o.Name = "east"
	o.Kubeconfig = "east.yaml"
	o.GatewayAddresses = []string{"192.0.2.10", "gw.east.example.com", "2001:db8::1"}
	return o
}

func TestLinkOptionsValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*LinkOptions)
		want   []string // empty: valid
	}{
		{"valid", func(*LinkOptions) {}, nil},
		{"flat without gateway", func(o *LinkOptions) { o.Mode = "flat"; o.GatewayAddresses = nil }, nil},
		{"30 characters", func(o *LinkOptions) { o.Name = strings.Repeat("a", 30) }, nil},
		{"no name", func(o *LinkOptions) { o.Name = "" }, []string{"NAME is required"}},
		{"31 characters", func(o *LinkOptions) { o.Name = strings.Repeat("a", 31) }, []string{"no more than 30 characters"}},
		{"not a DNS label", func(o *LinkOptions) { o.Name = "East_1" }, []string{`cluster NAME "East_1"`, "RFC 1123"}},
		{"dots", func(o *LinkOptions) { o.Name = "east.example" }, []string{`cluster NAME "east.example"`}},
		{"no kubeconfig", func(o *LinkOptions) { o.Kubeconfig = "" }, []string{"--kubeconfig is required"}},
		{"gateway mode without address", func(o *LinkOptions) { o.GatewayAddresses = nil }, []string{"--gateway-address is required in gateway mode"}},
		{"bad address", func(o *LinkOptions) { o.GatewayAddresses = []string{"not an address!"} }, []string{"neither an IP address nor a DNS name"}},
		{"repeated address", func(o *LinkOptions) { o.GatewayAddresses = []string{"192.0.2.10", "192.0.2.10"} }, []string{"given twice"}},
		{"several", func(o *LinkOptions) {
			o.Mode = "mesh"
			o.GatewayPort = 70000
			o.Namespace = "Bad"
			o.RemoteNamespace = ""
			o.ServiceAccount = "a/b"
			o.TokenDuration = time.Minute
		}, []string{`--mode "mesh"`, "--gateway-port 70000", `--namespace "Bad"`, `--remote-namespace ""`, `--service-account "a/b"`, "--token-duration 1m0s"}},
		{"fractional token duration", func(o *LinkOptions) { o.TokenDuration = time.Hour + time.Millisecond }, []string{"whole seconds"}},
		{"local kubeconfig without apply", func(o *LinkOptions) { o.LocalKubeconfig = "west.yaml" }, []string{"only make sense with --apply"}},
		{"local kubeconfig with apply", func(o *LinkOptions) { o.LocalKubeconfig = "west.yaml"; o.Apply = true }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := validLinkOptions()
			tc.mutate(&o)
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil; want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q; want it to hold %q", err, want)
				}
			}
		})
	}
}

// TestLinkClusterValidatesFirst: bad options fail before any file is read
// or cluster reached (the kubeconfig named does not exist).
func TestLinkClusterValidatesFirst(t *testing.T) {
	o := validLinkOptions()
	o.Kubeconfig = filepath.Join(t.TempDir(), "missing.yaml")
	o.Name = "Bad_Name"
	err := LinkCluster(t.Context(), o, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `cluster NAME "Bad_Name"`) {
		t.Fatalf("LinkCluster = %v; want the name's validation error", err)
	}
	o.Name = "east"
	err = LinkCluster(t.Context(), o, io.Discard, io.Discard)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "read --kubeconfig") {
		t.Fatalf("LinkCluster = %v; want an error reading --kubeconfig", err)
	}
}

func TestLoadRemoteCluster(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("the CA"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "east.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
- name: east
  cluster: {server: "https://east.example.com:6443", certificate-authority: ca.crt, tls-server-name: api.east}
- name: other
  cluster: {server: "https://other.example.com:6443"}
contexts:
- {name: east-admin, context: {cluster: east, user: admin}}
- {name: broken, context: {cluster: nowhere, user: admin}}
current-context: east-admin
users:
- {name: admin, user: {token: secret}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := LoadRemoteCluster(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Context != "east-admin" || rc.Cluster.Server != "https://east.example.com:6443" || string(rc.Cluster.CertificateAuthorityData) != "the CA" ||
		rc.Cluster.CertificateAuthority != "" || rc.Cluster.TLSServerName != "api.east" {
		t.Errorf("LoadRemoteCluster = context %q cluster %+v; want east-admin, the server, the CA file's content and the TLS server name", rc.Context, rc.Cluster)
	}
	if rc.Config.Host != "https://east.example.com:6443" || rc.Config.BearerToken != "secret" {
		t.Errorf("LoadRemoteCluster config = host %q token %q; want the admin's", rc.Config.Host, rc.Config.BearerToken)
	}
	if _, err := LoadRemoteCluster(path, "west"); err == nil || !strings.Contains(err.Error(), `no context "west" (it has: broken, east-admin)`) {
		t.Errorf("LoadRemoteCluster(west) = %v; want an error listing the contexts", err)
	}
	if _, err := LoadRemoteCluster(path, "broken"); err == nil || !strings.Contains(err.Error(), `names cluster "nowhere"`) {
		t.Errorf("LoadRemoteCluster(broken) = %v; want an error naming the missing cluster", err)
	}
}

func TestReadOnlyKubeconfig(t *testing.T) {
	cluster := &clientcmdapi.Cluster{Server: "https://east.example.com:6443", CertificateAuthorityData: []byte("CA"), TLSServerName: "api.east"}
	data, err := ReadOnlyKubeconfig(cluster, "east", "crossmap-system", "crossmap-remote", "tok")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatalf("the kubeconfig does not load: %v\n%s", err, data)
	}
	if cfg.Host != cluster.Server || string(cfg.CAData) != "CA" || cfg.ServerName != "api.east" || cfg.BearerToken != "tok" {
		t.Errorf("kubeconfig gives host %q CA %q server name %q token %q; want the cluster's, and the token", cfg.Host, cfg.CAData, cfg.ServerName, cfg.BearerToken)
	}
	if len(cfg.CertData) != 0 || cfg.Username != "" || cfg.ExecProvider != nil {
		t.Errorf("kubeconfig carries credentials besides the token: %+v", cfg)
	}
}

func TestWriteManifests(t *testing.T) {
	o := validLinkOptions()
	o.Namespace = "crossmap"
	o.GatewayPort = 8443
	secret, link := LocalObjects(o, []byte("kubeconfig bytes"))
	var out bytes.Buffer
	if err := WriteManifests(&out, secret, link); err != nil {
		t.Fatal(err)
	}
	for _, unwanted := range []string{"status:", "creationTimestamp"} {
		if strings.Contains(out.String(), unwanted) {
			t.Errorf("manifests hold %q:\n%s", unwanted, out.String())
		}
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(&out))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d YAML documents, want 2", len(docs))
	}
	var gotSecret corev1.Secret
	if err := yaml.UnmarshalStrict(docs[0], &gotSecret); err != nil {
		t.Fatal(err)
	}
	if gotSecret.Kind != "Secret" || gotSecret.APIVersion != "v1" || gotSecret.Namespace != "crossmap" || gotSecret.Name != "east-kubeconfig" ||
		string(gotSecret.Data["kubeconfig"]) != "kubeconfig bytes" {
		t.Errorf("Secret = %+v; want crossmap/east-kubeconfig holding the kubeconfig", gotSecret)
	}
	var gotLink crossmapv1.Link
	if err := yaml.UnmarshalStrict(docs[1], &gotLink); err != nil {
		t.Fatal(err)
	}
	want := crossmapv1.LinkSpec{
		ClusterName:       "east",
		CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-kubeconfig", Key: "kubeconfig"},
		Mode:              crossmapv1.ModeGateway,
		Gateway:           crossmapv1.GatewaySpec{Addresses: []string{"192.0.2.10", "gw.east.example.com", "2001:db8::1"}, Port: 8443},
	}
	if gotLink.Kind != "Link" || gotLink.APIVersion != "crossmap.io/v1alpha1" || gotLink.Namespace != "crossmap" || gotLink.Name != "east" ||
		mustYAML(t, gotLink.Spec) != mustYAML(t, want) {
		t.Errorf("Link = %s; want crossmap/east with spec %s", mustYAML(t, gotLink), mustYAML(t, want))
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
