package edge

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// This file decides which Mapping fields the dev edge honours. Every field
// of a Mapping's spec is in one of four sets:
//
//   - honoured: the edge routes by it as Emissary would (honouredFields);
//   - bookkeeping: written by Emissary's own v2 -> v3alpha1 conversion to
//     remember how a v2 field was spelled, with no effect on routing
//     (v2ExplicitTLS, v2BoolHeaders, v2BoolQueryParameters); ignored;
//   - skipped: shadow and host_redirect. Such a Mapping does not route
//     requests to its service in Emissary either (it mirrors them, or
//     answers with a redirect), so the edge reports it and leaves it out;
//   - everything else: reported as a Problem, and the Mapping is routed as
//     if the field were not there.
//
// The sets are keyed by the JSON names users write, read from the JSON form
// of the spec, so that a field added to the Mapping CRD later is reported
// rather than silently ignored.

// honouredFields are the Mapping fields the dev edge implements.
var honouredFields = map[string]bool{
	"ambassador_id":          true,
	"prefix":                 true,
	"prefix_regex":           true,
	"prefix_exact":           true,
	"case_sensitive":         true,
	"hostname":               true,
	"host":                   true,
	"host_regex":             true,
	"headers":                true,
	"regex_headers":          true,
	"query_parameters":       true,
	"regex_query_parameters": true,
	"method":                 true,
	"method_regex":           true,
	"precedence":             true,
	"weight":                 true,
	"service":                true,
	"rewrite":                true,
	"host_rewrite":           true,
	"timeout_ms":             true,
	"add_request_headers":    true, // values with %…% operators are reported
	"add_response_headers":   true, // likewise
	"load_balancer":          true, // round_robin only; other policies are reported
	"tls":                    true, // originate TLS with the TLSContext it names (tls.go)
}

// bookkeepingFields record how Emissary converted a v2 Mapping; the
// converted fields themselves (headers, regex_headers, service, ...) say
// everything that routes.
var bookkeepingFields = map[string]bool{
	"v2ExplicitTLS":         true,
	"v2BoolHeaders":         true,
	"v2BoolQueryParameters": true,
}

// unsupportedFields says, for each field the edge does not implement, what
// Emissary would do with it. A field missing here gets a generic message.
var unsupportedFields = map[string]string{
	"add_linkerd_headers":                "add an l5d-dst-override header naming the service, for Linkerd",
	"auto_host_rewrite":                  "set the Host header to the upstream endpoint's address",
	"dns_type":                           "resolve the service with this DNS lookup type",
	"docs":                               "publish this documentation metadata for the Dev Portal",
	"enable_ipv4":                        "restrict the service's DNS resolution to these address families (the dev edge resolves through EndpointSlices)",
	"enable_ipv6":                        "restrict the service's DNS resolution to these address families (the dev edge resolves through EndpointSlices)",
	"circuit_breakers":                   "limit the connections, pending requests and retries to the upstream",
	"keepalive":                          "enable TCP keepalive on upstream connections",
	"cors":                               "answer CORS preflight requests and add CORS response headers",
	"retry_policy":                       "retry failed requests",
	"respect_dns_ttl":                    "re-resolve the service at its DNS TTL",
	"grpc":                               "speak HTTP/2 (gRPC) to the upstream",
	"outlier_detection":                  "report it as unsupported too",
	"path_redirect":                      "use it for the redirect of a host_redirect Mapping",
	"prefix_redirect":                    "use it for the redirect of a host_redirect Mapping",
	"regex_redirect":                     "use it for the redirect of a host_redirect Mapping",
	"redirect_response_code":             "use it for the redirect of a host_redirect Mapping",
	"priority":                           "route with this Envoy routing priority",
	"cluster_tag":                        "name the upstream cluster with this tag",
	"remove_request_headers":             "remove these headers from the request",
	"remove_response_headers":            "remove these headers from the response",
	"resolver":                           "resolve the service with this resolver (the dev edge resolves through EndpointSlices)",
	"regex_rewrite":                      "rewrite the path with this regex and ignore rewrite; the dev edge forwards the path unchanged",
	"shadow":                             "mirror the group's requests to this service and discard the answers; the dev edge leaves the Mapping out",
	"host_redirect":                      "answer with a redirect to the service instead of proxying; the dev edge leaves the Mapping out",
	"connect_timeout_ms":                 "give up connecting to the upstream after this long",
	"cluster_idle_timeout_ms":            "close idle upstream connections after this long",
	"cluster_max_connection_lifetime_ms": "close upstream connections after this long",
	"idle_timeout_ms":                    "end a request that is idle for this long",
	"health_checks":                      "health-check the upstream endpoints actively",
	"use_websocket":                      "allow WebSocket upgrades only (the dev edge passes every Upgrade through)",
	"allow_upgrade":                      "allow only these protocol upgrades (the dev edge passes every Upgrade through)",
	"bypass_auth":                        "skip the AuthService for this Mapping (the dev edge has no AuthService)",
	"auth_context_extensions":            "pass these context extensions to the AuthService",
	"bypass_error_response_overrides":    "skip the Module's error_response_overrides",
	"error_response_overrides":           "replace error responses with these bodies",
	"modules":                            "apply these per-Mapping module settings",
	"labels":                             "rate-limit requests with these labels",
	"envoy_override":                     "merge this into the Envoy route",
	"stats_name":                         "name the upstream's statistics with it",
}

// redirectFields only matter with host_redirect.
var redirectFields = []string{"path_redirect", "prefix_redirect", "regex_redirect", "redirect_response_code"}

// fieldCheck is what checkFields learned about a Mapping.
type fieldCheck struct {
	problems []Problem
	// shadow and redirect say the Mapping is a shadow or a host_redirect
	// Mapping: it joins its group (its fields count in Emissary's checks)
	// but does not route.
	shadow, redirect bool
	// rejected is set when Emissary would refuse the whole Mapping (an
	// invalid load_balancer).
	rejected string
}

// checkFields reports the fields of m the edge does not honour.
func checkFields(m *ambv3.Mapping) fieldCheck {
	var fc fieldCheck
	name := objectName(m.Namespace, m.Name)
	problem := func(field, format string, args ...any) {
		fc.problems = append(fc.problems, Problem{Mapping: name, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	sp := &m.Spec

	raw, err := json.Marshal(sp)
	var fields map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(raw, &fields)
	}
	if err != nil {
		// Cannot happen with the generated types; say so rather than
		// route silently.
		problem("", "the dev edge cannot read the spec (%v); fields it does not honour may go unreported", err)
	}

	fc.shadow = sp.Shadow != nil && *sp.Shadow
	// Emissary lets shadow win when both are set (irhttpmappinggroup.py,
	// add_mapping).
	fc.redirect = !fc.shadow && sp.HostRedirect != nil && *sp.HostRedirect

	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		if honouredFields[k] || bookkeepingFields[k] || emptyJSON(v) {
			continue
		}
		if fc.redirect && slices.Contains(redirectFields, k) {
			continue // covered by the host_redirect problem
		}
		what, ok := unsupportedFields[k]
		if !ok {
			what = "apply it"
		}
		problem(k, "not supported by the dev edge; Emissary would %s", what)
	}

	if lb := sp.LoadBalancer; lb != nil {
		switch {
		case !validLoadBalancer(lb):
			fc.rejected = fmt.Sprintf("load_balancer %s is not valid; Emissary rejects the Mapping (irhttpmapping.py, validate_load_balancer)", string(mustJSON(lb)))
		case lb.Policy != "round_robin":
			problem("load_balancer", "not supported by the dev edge; Emissary would balance with policy %s, the dev edge uses round_robin", lb.Policy)
		}
	}

	if sp.AddRequestHeaders != nil {
		for _, k := range slices.Sorted(maps.Keys(*sp.AddRequestHeaders)) {
			if strings.Contains((*sp.AddRequestHeaders)[k].Value, "%") {
				problem("add_request_headers", "not supported by the dev edge; Emissary would expand Envoy's %%…%% variables in header %s, the dev edge sends the value as written", k)
			}
		}
	}
	if sp.AddResponseHeaders != nil {
		for _, k := range slices.Sorted(maps.Keys(*sp.AddResponseHeaders)) {
			if strings.Contains((*sp.AddResponseHeaders)[k].Value, "%") {
				problem("add_response_headers", "not supported by the dev edge; Emissary would expand Envoy's %%…%% variables in header %s, the dev edge answers with the value as written", k)
			}
		}
	}
	return fc
}

// validLoadBalancer is Emissary's validate_load_balancer
// (ir/irhttpmapping.py): round_robin and least_request take no other
// setting; ring_hash and maglev take exactly one of cookie (with a name),
// header and source_ip.
func validLoadBalancer(lb *ambv3.LoadBalancer) bool {
	set := 0
	if lb.Cookie != nil {
		set++
	}
	if lb.Header != "" {
		set++
	}
	if lb.SourceIp != nil {
		set++
	}
	switch lb.Policy {
	case "round_robin", "least_request":
		return set == 0
	case "ring_hash", "maglev":
		return set == 1 && (lb.Cookie == nil || lb.Cookie.Name != "")
	}
	return false
}

// emptyJSON reports whether a field's JSON value has no effect in Emissary:
// false, an empty string, an empty list or object, or null. Emissary's
// defaults for the boolean fields are all false, so writing false changes
// nothing.
func emptyJSON(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "false", `""`, "[]", "{}", "null":
		return true
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprintf("%v", v))
	}
	return b
}
