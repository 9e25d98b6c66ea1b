package ingress

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ServiceRef is the Kubernetes Service a Mapping's service field points at.
type ServiceRef struct {
	Scheme    string // "", "http" or "https": empty when no scheme was written
	Name      string
	Namespace string // the Mapping's namespace when not written
	Port      int32  // 80 when unset, 443 for https
}

// String renders r the way Emissary's service field reads:
// [scheme://]name.namespace:port, with the scheme only if one was written.
// ParseService reads it back as r, whatever the Mapping's namespace.
func (r ServiceRef) String() string {
	s := r.Name + "." + r.Namespace + ":" + strconv.Itoa(int(r.Port))
	if r.Scheme != "" {
		s = r.Scheme + "://" + s
	}
	return s
}

// ErrNotKubernetesService is wrapped by the errors of ParseService for a
// well-formed service field that names something other than a Kubernetes
// Service: an IP address, an external hostname, localhost, or a scheme
// other than http and https. Emissary routes such Mappings fine; crossmap
// just has no Service to mirror or split.
var ErrNotKubernetesService = errors.New("not a Kubernetes Service")

// ServiceError says why ParseService did not accept a service field. Err is
// ErrNotKubernetesService when the field names something other than a
// Service, and nil when it cannot be parsed at all.
type ServiceError struct {
	Service string // the service field as written
	Reason  string // what is wrong, and what is allowed
	Err     error
}

func (e *ServiceError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("service %q: %v: %s", e.Service, e.Err, e.Reason)
	}
	return fmt.Sprintf("service %q: %s", e.Service, e.Reason)
}

func (e *ServiceError) Unwrap() error { return e.Err }

// serviceForms lists what ParseService accepts, for error messages.
const serviceForms = "a Service is name, name.namespace, name.namespace.svc or name.namespace.svc.cluster.local, with an optional :port and http:// or https:// prefix"

// ParseService parses service, the service field of a Mapping in namespace
// mappingNamespace, into the Kubernetes Service it routes to.
//
// The accepted forms are name, name.namespace, name.namespace.svc and
// name.namespace.svc.cluster.local, each with an optional :port and an
// optional http:// or https:// prefix. As in Emissary, the scheme is
// case-insensitive (it is returned in lowercase), and the port defaults to
// 443 with https:// and to 80 otherwise. An unqualified name is in
// mappingNamespace, which is where Emissary resolves it unless the
// Ambassador Module sets use_ambassador_namespace_for_service_resolution;
// a caller that honours that setting passes Emissary's namespace instead.
//
// Errors are *ServiceError. A field that names an IP address, localhost, a
// hostname outside the cluster (more labels without the .svc or
// .svc.cluster.local suffix, a cluster domain other than cluster.local, or
// an absolute name such as "podinfo.test." that does not end in
// .svc.cluster.local.) or a scheme other than http and https wraps
// ErrNotKubernetesService. Anything else that is not one of the forms above
// is unparsable: an empty field, surrounding spaces, a port outside 1 to
// 65535, a path, query or user info, uppercase letters, a name that is not
// a DNS-1035 label or a namespace that is not a DNS-1123 label (at most 63
// characters each). Emissary accepts some of these (it drops a path with a
// warning, takes port 0 as unset, and lowercases names); crossmap refuses
// them, so that the developer learns the field does not say what they
// meant, and so that the name is exactly the Service object's name.
func ParseService(service, mappingNamespace string) (ServiceRef, error) {
	bad := func(format string, args ...any) (ServiceRef, error) {
		return ServiceRef{}, &ServiceError{Service: service, Reason: fmt.Sprintf(format, args...)}
	}
	notService := func(format string, args ...any) (ServiceRef, error) {
		return ServiceRef{}, &ServiceError{Service: service, Reason: fmt.Sprintf(format, args...), Err: ErrNotKubernetesService}
	}

	s := service
	switch {
	case s == "":
		return bad("the field is empty; %s", serviceForms)
	case strings.TrimSpace(s) != s:
		return bad("it has leading or trailing spaces")
	}

	var ref ServiceRef
	if i := strings.Index(s, "://"); i >= 0 && isScheme(s[:i]) {
		scheme := strings.ToLower(s[:i])
		if scheme != "http" && scheme != "https" {
			return notService("scheme %q is not http or https", s[:i])
		}
		ref.Scheme, s = scheme, s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		return bad("it has %q after the host and port; the service field names only [scheme://]host[:port] (match and rewrite paths with prefix and rewrite)", s[i:])
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return bad("it has user info %q before the host; the service field names only [scheme://]host[:port]", s[:i+1])
	}

	host, port, hasPort, problem := splitHostPort(s)
	if problem != "" {
		return bad("%s", problem)
	}
	// An address is not a Service whatever its port, so say that first.
	if addr, err := netip.ParseAddr(host); err == nil {
		return notService("%s is an IP address; crossmap routes only to Services named in the field", addr)
	}
	if hasPort {
		p, err := strconv.ParseUint(port, 10, 16)
		if port == "" {
			return bad("it has ':' but no port after it")
		}
		if strings.TrimLeft(port, "0123456789") != "" || err != nil || p == 0 {
			return bad("port %q is not a number from 1 to 65535", port)
		}
		ref.Port = int32(p)
	} else {
		ref.Port = 80
		if ref.Scheme == "https" {
			ref.Port = 443
		}
	}

	if host == "" {
		return bad("it names no host; %s", serviceForms)
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		// Emissary never qualifies localhost with a namespace: it is the
		// Emissary pod itself.
		return notService("localhost is the Emissary pod itself")
	}
	// A trailing dot makes the name absolute: "podinfo.test." is the public
	// name podinfo.test, not a Service, and only the full
	// name.namespace.svc.cluster.local. stays in the cluster.
	name, absolute := strings.CutSuffix(host, ".")
	labels := strings.Split(name, ".")
	if slices.Contains(labels, "") {
		return bad("%q has an empty label (a leading, trailing or doubled '.'); %s", host, serviceForms)
	}
	inCluster := len(labels) == 5 && isClusterSuffix(labels[2:])
	if !absolute {
		inCluster = inCluster || len(labels) <= 2 || len(labels) == 3 && isClusterSuffix(labels[2:])
	}
	if !inCluster {
		return notService("%q is not a name in the cluster; %s", host, serviceForms)
	}
	if lower := strings.ToLower(host); lower != host {
		return bad("%q has uppercase letters; Kubernetes names are lowercase (write %q)", host, lower)
	}

	ref.Name = labels[0]
	if why := labelProblem(ref.Name, 63, true); why != "" {
		return bad("name %q is not a valid Service name: %s; a Service name is a DNS-1035 label: at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit", ref.Name, why)
	}
	if len(labels) > 1 {
		ref.Namespace = labels[1]
		if why := labelProblem(ref.Namespace, 63, false); why != "" {
			return bad("namespace %q is not a valid namespace: %s; a namespace is a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", ref.Namespace, why)
		}
	} else {
		ref.Namespace = mappingNamespace
		if why := labelProblem(ref.Namespace, 63, false); why != "" {
			return bad("the field names no namespace, and the Mapping's namespace %q is not a valid namespace: %s", ref.Namespace, why)
		}
	}
	return ref, nil
}

// isScheme reports whether s has the syntax of a URL scheme (RFC 3986
// section 3.1), so that "tcp://x" is reported as an unsupported scheme and
// "a/b://x" as a path.
func isScheme(s string) bool {
	if s == "" || !isASCIILetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isASCIILetter(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isClusterSuffix reports whether the labels after name.namespace are one of
// the cluster-local suffixes, svc or svc.cluster.local. DNS is
// case-insensitive, so they are compared so too: "podinfo.test.SVC" is a
// Service name, and is then reported for its uppercase letters rather than
// as a name outside the cluster.
func isClusterSuffix(labels []string) bool {
	switch len(labels) {
	case 1:
		return strings.EqualFold(labels[0], "svc")
	case 3:
		return strings.EqualFold(labels[0], "svc") && strings.EqualFold(labels[1], "cluster") && strings.EqualFold(labels[2], "local")
	}
	return false
}

// splitHostPort splits host[:port] or [host][:port], without checking the
// port; hasPort says whether there was a ':' for one. Unlike
// net.SplitHostPort the port is optional, and a bare IPv6 address, which
// has colons but no port, is returned whole as the host so that it can be
// reported as an address. It returns a problem, or "".
func splitHostPort(s string) (host, port string, hasPort bool, problem string) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", false, "it has '[' without a closing ']'"
		}
		host, rest := s[1:end], s[end+1:]
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", false, fmt.Sprintf("%q in brackets is not an IPv6 address", host)
		}
		if port, ok := strings.CutPrefix(rest, ":"); ok {
			return host, port, true, ""
		}
		if rest != "" {
			return "", "", false, fmt.Sprintf("it has %q after the bracketed address, where only :port may be", rest)
		}
		return host, "", false, ""
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, ""
	case 1:
		host, port, _ := strings.Cut(s, ":")
		return host, port, true, ""
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s, "", false, ""
	}
	return "", "", false, "it has more than one ':'; an IPv6 address goes in brackets, like [::1]:8080, and a port follows a single ':'"
}
