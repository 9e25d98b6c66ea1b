package ingress

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestServiceRefString(t *testing.T) {
	tests := []struct {
		ref  ServiceRef
		want string
	}{
		{ServiceRef{Name: "podinfo", Namespace: "test", Port: 80}, "podinfo.test:80"},
		{ServiceRef{Scheme: "http", Name: "podinfo", Namespace: "test", Port: 9898}, "http://podinfo.test:9898"},
		{ServiceRef{Scheme: "https", Name: "podinfo", Namespace: "test", Port: 443}, "https://podinfo.test:443"},
	}
	for _, tt := range tests {
		if got := tt.ref.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestParseService(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		service string
		ns      string
		want    ServiceRef
	}{
		{"podinfo", "test", ServiceRef{Name: "podinfo", Namespace: "test", Port: 80}},
		{"podinfo:9898", "test", ServiceRef{Name: "podinfo", Namespace: "test", Port: 9898}},
		{"podinfo.other", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 80}},
		{"podinfo.other:9898", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 9898}},
		{"podinfo.other.svc", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 80}},
		{"podinfo.other.svc:9898", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 9898}},
		{"podinfo.other.svc.cluster.local", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 80}},
		{"podinfo.other.svc.cluster.local:9898", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 9898}},
		// An absolute name is fine when it is the full cluster-local one.
		{"podinfo.other.svc.cluster.local.:9898", "test", ServiceRef{Name: "podinfo", Namespace: "other", Port: 9898}},
		{"http://podinfo", "test", ServiceRef{Scheme: "http", Name: "podinfo", Namespace: "test", Port: 80}},
		{"https://podinfo", "test", ServiceRef{Scheme: "https", Name: "podinfo", Namespace: "test", Port: 443}},
		{"https://podinfo.other.svc:8443", "test", ServiceRef{Scheme: "https", Name: "podinfo", Namespace: "other", Port: 8443}},
		{"http://podinfo.other.svc.cluster.local:9898", "test", ServiceRef{Scheme: "http", Name: "podinfo", Namespace: "other", Port: 9898}},
		// Emissary matches the scheme case-insensitively.
		{"HTTPS://podinfo", "test", ServiceRef{Scheme: "https", Name: "podinfo", Namespace: "test", Port: 443}},
		{"Http://podinfo", "test", ServiceRef{Scheme: "http", Name: "podinfo", Namespace: "test", Port: 80}},
		{"podinfo:0080", "test", ServiceRef{Name: "podinfo", Namespace: "test", Port: 80}},
		{"podinfo:1", "test", ServiceRef{Name: "podinfo", Namespace: "test", Port: 1}},
		{"podinfo:65535", "test", ServiceRef{Name: "podinfo", Namespace: "test", Port: 65535}},
		{"a", "b", ServiceRef{Name: "a", Namespace: "b", Port: 80}},
		{"a-1.2b-c", "test", ServiceRef{Name: "a-1", Namespace: "2b-c", Port: 80}},
		{long + "." + long, "test", ServiceRef{Name: long, Namespace: long, Port: 80}},
		// Two labels are name.namespace, whatever the second one looks like:
		// in-cluster DNS resolves them so.
		{"podinfo.svc", "test", ServiceRef{Name: "podinfo", Namespace: "svc", Port: 80}},
		{"example.com", "test", ServiceRef{Name: "example", Namespace: "com", Port: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			got, err := ParseService(tt.service, tt.ns)
			if err != nil {
				t.Fatalf("ParseService(%q, %q) error: %v", tt.service, tt.ns, err)
			}
			if got != tt.want {
				t.Fatalf("ParseService(%q, %q) = %+v, want %+v", tt.service, tt.ns, got, tt.want)
			}
			// The rendering names the namespace, so it reads back the
			// same from any Mapping.
			again, err := ParseService(got.String(), "elsewhere")
			if err != nil || again != got {
				t.Errorf("ParseService(%q) = %+v, %v; want %+v back", got.String(), again, err, got)
			}
		})
	}
}

func TestParseServiceErrors(t *testing.T) {
	tests := []struct {
		service    string
		ns         string
		notService bool     // wraps ErrNotKubernetesService
		contains   []string // facts the message must state
	}{
		// Not a Service: well-formed, but names something else.
		{"10.0.0.1", "test", true, []string{"10.0.0.1 is an IP address"}},
		{"10.0.0.1:8080", "test", true, []string{"10.0.0.1 is an IP address"}},
		{"https://10.0.0.1", "test", true, []string{"IP address"}},
		{"[::1]", "test", true, []string{"::1 is an IP address"}},
		{"[2001:db8::1]:8080", "test", true, []string{"2001:db8::1 is an IP address"}},
		{"[::1]:99999", "test", true, []string{"IP address"}},
		{"::1", "test", true, []string{"::1 is an IP address"}},
		{"fe80::1%eth0", "test", true, []string{"IP address"}},
		{"[10.0.0.1]:80", "test", true, []string{"IP address"}},
		{"api.example.com", "test", true, []string{`"api.example.com" is not a name in the cluster`, "name.namespace.svc.cluster.local"}},
		{"api.example.com:443", "test", true, []string{"not a name in the cluster"}},
		{"https://api.example.com", "test", true, []string{"not a name in the cluster"}},
		{"podinfo.test.svc.cluster", "test", true, []string{"not a name in the cluster"}},
		{"podinfo.test.svc.example.org", "test", true, []string{"not a name in the cluster"}},
		{"podinfo.test.cluster.local", "test", true, []string{"not a name in the cluster"}},
		{"a.podinfo.test.svc.cluster.local", "test", true, []string{"not a name in the cluster"}},
		{"API.Example.com", "test", true, []string{"not a name in the cluster"}},
		// A trailing dot makes the name absolute: the public name test.
		{"podinfo.test.", "test", true, []string{"not a name in the cluster"}},
		{"podinfo.test.svc.", "test", true, []string{"not a name in the cluster"}},
		{"10.0.0.1.", "test", true, []string{"not a name in the cluster"}},
		{"localhost", "test", true, []string{"localhost is the Emissary pod itself"}},
		{"localhost:8500", "test", true, []string{"localhost"}},
		{"LOCALHOST.", "test", true, []string{"localhost"}},
		{"tcp://podinfo", "test", true, []string{`scheme "tcp" is not http or https`}},
		{"grpc://podinfo.test:50051", "test", true, []string{`scheme "grpc"`}},
		{"h2c://podinfo", "test", true, []string{`scheme "h2c"`}},

		// Unparsable.
		{"", "test", false, []string{"empty", "name.namespace"}},
		{" podinfo", "test", false, []string{"leading or trailing spaces"}},
		{"podinfo\n", "test", false, []string{"leading or trailing spaces"}},
		{"podinfo:", "test", false, []string{"':' but no port"}},
		{"podinfo:0", "test", false, []string{`port "0" is not a number from 1 to 65535`}},
		{"podinfo:65536", "test", false, []string{`port "65536"`, "1 to 65535"}},
		{"podinfo:99999999999999999999", "test", false, []string{`port "99999999999999999999"`}},
		{"podinfo:http", "test", false, []string{`port "http"`}},
		{"podinfo:+80", "test", false, []string{`port "+80"`}},
		{"podinfo:-1", "test", false, []string{`port "-1"`}},
		{"podinfo: 80", "test", false, []string{`port " 80"`}},
		{"podinfo/api", "test", false, []string{`"/api" after the host and port`}},
		{"podinfo.test:9898/api/v1", "test", false, []string{`"/api/v1"`}},
		{"http://podinfo/", "test", false, []string{`"/"`}},
		{"podinfo?x=1", "test", false, []string{`"?x=1"`}},
		{"podinfo#top", "test", false, []string{`"#top"`}},
		{"a/b://podinfo", "test", false, []string{"after the host"}},
		{"user:pw@podinfo", "test", false, []string{`user info "user:pw@"`}},
		{"http://", "test", false, []string{"names no host"}},
		{":80", "test", false, []string{"names no host"}},
		{"podinfo:80:90", "test", false, []string{"more than one ':'"}},
		{"[podinfo]", "test", false, []string{`"podinfo" in brackets is not an IPv6 address`}},
		{"[::1", "test", false, []string{"without a closing ']'"}},
		{"[::1]x", "test", false, []string{`"x" after the bracketed address`}},
		{"podinfo..test", "test", false, []string{"empty label"}},
		{".podinfo", "test", false, []string{"empty label"}},
		{".", "test", false, []string{"empty label"}},
		{"Podinfo", "test", false, []string{"uppercase", `write "podinfo"`}},
		{"podinfo.Test.svc", "test", false, []string{"uppercase", `write "podinfo.test.svc"`}},
		{"podinfo.test.SVC", "test", false, []string{"uppercase", `write "podinfo.test.svc"`}},
		{"1podinfo", "test", false, []string{`name "1podinfo" is not a valid Service name`, "must start with a letter", "DNS-1035"}},
		{"-podinfo", "test", false, []string{`name "-podinfo"`, "start with a letter"}},
		{"podinfo-", "test", false, []string{`name "podinfo-"`, "ends with '-'"}},
		{"pod_info", "test", false, []string{`name "pod_info"`, `'_'`}},
		{"pod%69nfo", "test", false, []string{`'%'`}},
		{strings.Repeat("a", 64), "test", false, []string{"64 characters", "limit is 63"}},
		{"podinfo.-test", "test", false, []string{`namespace "-test" is not a valid namespace`, "starts with '-'", "DNS-1123"}},
		{"podinfo.test-", "test", false, []string{`namespace "test-"`, "ends with '-'"}},
		{"podinfo.te_st", "test", false, []string{`namespace "te_st"`}},
		{"podinfo." + strings.Repeat("a", 64), "test", false, []string{"64 characters"}},
		{"podinfo", "", false, []string{"names no namespace", `Mapping's namespace ""`, "empty"}},
		{"podinfo:80", "Bad", false, []string{`Mapping's namespace "Bad"`, "uppercase"}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			got, err := ParseService(tt.service, tt.ns)
			if err == nil {
				t.Fatalf("ParseService(%q, %q) = %+v, want an error", tt.service, tt.ns, got)
			}
			if got != (ServiceRef{}) {
				t.Errorf("ParseService(%q, %q) = %+v with an error, want the zero value", tt.service, tt.ns, got)
			}
			if is := errors.Is(err, ErrNotKubernetesService); is != tt.notService {
				t.Errorf("errors.Is(%v, ErrNotKubernetesService) = %v, want %v", err, is, tt.notService)
			}
			var se *ServiceError
			if !errors.As(err, &se) {
				t.Fatalf("errors.As(%v, *ServiceError) = false", err)
			}
			if se.Service != tt.service {
				t.Errorf("ServiceError.Service = %q, want %q", se.Service, tt.service)
			}
			msg := err.Error()
			if prefix := "service " + strconv.Quote(tt.service) + ": "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("message does not start with %s: %s", prefix, msg)
			}
			if tt.notService && !strings.Contains(msg, ": not a Kubernetes Service: ") {
				t.Errorf("message does not say it is not a Kubernetes Service: %s", msg)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("message does not say %q: %s", c, msg)
				}
			}
		})
	}
}
