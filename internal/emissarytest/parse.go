package emissarytest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// This file reads what compile.py prints: Emissary's errors, and the Envoy
// route configuration (v3 RouteConfiguration as Emissary's
// envoy/v3/v3route.py writes it) with the clusters' services.

// driverOutput is compile.py's JSON.
type driverOutput struct {
	Errors []struct {
		Object string `json:"object"`
		Error  string `json:"error"`
	} `json:"errors"`
	VHosts []struct {
		Name    string       `json:"name"`
		Domains []string     `json:"domains"`
		Routes  []envoyRoute `json:"routes"`
	} `json:"vhosts"`
	Clusters map[string]struct {
		Service    string `json:"service"`
		TLSContext string `json:"tls_context"`
	} `json:"clusters"`
}

type envoyRoute struct {
	// Group is the id of the Emissary group the route comes from; the
	// driver adds it.
	Group string `json:"group"`
	Match struct {
		Prefix          *string `json:"prefix"`
		Path            *string `json:"path"`
		SafeRegex       *regex  `json:"safe_regex"`
		CaseSensitive   *bool   `json:"case_sensitive"`
		RuntimeFraction *struct {
			DefaultValue struct {
				Numerator   int    `json:"numerator"`
				Denominator string `json:"denominator"`
			} `json:"default_value"`
		} `json:"runtime_fraction"`
		Headers []struct {
			Name           string  `json:"name"`
			ExactMatch     *string `json:"exact_match"`
			SafeRegexMatch *regex  `json:"safe_regex_match"`
			PrefixMatch    *string `json:"prefix_match"`
			SuffixMatch    *string `json:"suffix_match"`
			PresentMatch   *bool   `json:"present_match"`
		} `json:"headers"`
		QueryParameters []struct {
			Name        string `json:"name"`
			StringMatch *struct {
				Exact     *string `json:"exact"`
				SafeRegex *regex  `json:"safe_regex"`
			} `json:"string_match"`
			PresentMatch *bool `json:"present_match"`
		} `json:"query_parameters"`
	} `json:"match"`
	Route *struct {
		Cluster            string  `json:"cluster"`
		PrefixRewrite      *string `json:"prefix_rewrite"`
		HostRewriteLiteral string  `json:"host_rewrite_literal"`
		Timeout            string  `json:"timeout"`
	} `json:"route"`
	Redirect            json.RawMessage `json:"redirect"`
	RequestHeadersToAdd []struct {
		Header struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"header"`
		Append *bool `json:"append"`
	} `json:"request_headers_to_add"`
	ResponseHeadersToAdd []struct {
		Header struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"header"`
		Append *bool `json:"append"`
	} `json:"response_headers_to_add"`
}

type regex struct {
	Regex string `json:"regex"`
}

// parse turns compile.py's output into a Result.
func parse(data []byte) (*Result, error) {
	var out driverOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode the output of Emissary's compiler: %w", err)
	}
	res := &Result{Errors: []Error{}, VirtualHosts: []VirtualHost{}}
	for _, e := range out.Errors {
		res.Errors = append(res.Errors, Error{Object: e.Object, Message: e.Error})
	}
	for _, vh := range out.VHosts {
		v := VirtualHost{Name: vh.Name, Domains: vh.Domains, Routes: []Route{}}
		matches := make([]Match, len(vh.Routes))
		proto := make([]string, len(vh.Routes))
		secure := false
		for i := range vh.Routes {
			var err error
			if matches[i], proto[i], err = vh.Routes[i].match(); err != nil {
				return nil, fmt.Errorf("read route %d of virtual host %s: %w", i, vh.Name, err)
			}
			secure = secure || proto[i] == "https"
		}
		matched := 0 // draws taken by the current group's earlier routes
		for i, er := range vh.Routes {
			// On a listener with securityModel XFP, Emissary writes each
			// route twice: for x-forwarded-proto https, and for the rest
			// with the Host's insecure action. Keep the former: the
			// routes an https request meets.
			if secure && proto[i] != "https" {
				continue
			}
			mem := Member{Numerator: 100, Redirect: er.Route == nil && len(er.Redirect) > 0}
			if rf := er.Match.RuntimeFraction; rf != nil {
				if d := rf.DefaultValue.Denominator; d != "" && d != "HUNDRED" {
					return nil, fmt.Errorf("read route %d of virtual host %s: runtime_fraction denominator %s, not HUNDRED", i, vh.Name, d)
				}
				mem.Numerator = rf.DefaultValue.Numerator
			}
			if r := er.Route; r != nil {
				mem.Cluster, mem.HostRewrite, mem.Timeout = r.Cluster, r.HostRewriteLiteral, r.Timeout
				if r.PrefixRewrite != nil {
					mem.PrefixRewrite = *r.PrefixRewrite
				}
				c := out.Clusters[r.Cluster]
				mem.Service, mem.TLSContext = c.Service, c.TLSContext
			}
			for _, h := range er.RequestHeadersToAdd {
				// Envoy appends unless told not to.
				mem.AddedHeaders = append(mem.AddedHeaders, AddedHeader{Name: h.Header.Key, Value: h.Header.Value, Append: h.Append == nil || *h.Append})
			}
			for _, h := range er.ResponseHeadersToAdd {
				mem.ResponseHeaders = append(mem.ResponseHeaders, AddedHeader{Name: h.Header.Key, Value: h.Header.Value, Append: h.Append == nil || *h.Append})
			}

			// A weighted group is consecutive routes of one Emissary
			// group, with cumulative numerators. Two groups can have one
			// match (another precedence, say): the group id tells them
			// apart.
			n := len(v.Routes)
			if n == 0 || v.Routes[n-1].Group != er.Group || !reflect.DeepEqual(v.Routes[n-1].Match, matches[i]) {
				v.Routes = append(v.Routes, Route{Group: er.Group, Match: matches[i]})
				n++
				matched = 0
			}
			// As Envoy evaluates it: one draw in [0, 100) per request,
			// and the first route whose numerator exceeds it wins.
			if c := min(mem.Numerator, 100); c > matched {
				mem.Share = c - matched
				matched = c
			}
			v.Routes[n-1].Members = append(v.Routes[n-1].Members, mem)
		}
		res.VirtualHosts = append(res.VirtualHosts, v)
	}
	return res, nil
}

// match is the route's match without its runtime fraction, and the
// x-forwarded-proto value it requires ("" for none), taken out of the
// headers.
func (er *envoyRoute) match() (Match, string, error) {
	em := &er.Match
	m := Match{CaseSensitive: em.CaseSensitive == nil || *em.CaseSensitive}
	switch {
	case em.Prefix != nil:
		m.Prefix = *em.Prefix
	case em.Path != nil:
		m.Path = *em.Path
	case em.SafeRegex != nil:
		m.Regex = em.SafeRegex.Regex
	default:
		return m, "", fmt.Errorf("no prefix, path or safe_regex")
	}
	xfp := ""
	for _, h := range em.Headers {
		vm := ValueMatch{Name: h.Name}
		switch {
		case h.ExactMatch != nil:
			vm.Kind, vm.Value = "exact", *h.ExactMatch
		case h.SafeRegexMatch != nil:
			vm.Kind, vm.Value = "regex", h.SafeRegexMatch.Regex
		case h.PrefixMatch != nil:
			vm.Kind, vm.Value = "prefix", *h.PrefixMatch
		case h.SuffixMatch != nil:
			vm.Kind, vm.Value = "suffix", *h.SuffixMatch
		case h.PresentMatch != nil:
			vm.Kind = "present"
		default:
			return m, "", fmt.Errorf("header matcher %s of an unknown kind", h.Name)
		}
		if strings.EqualFold(h.Name, "x-forwarded-proto") && vm.Kind == "exact" {
			xfp = vm.Value
			continue
		}
		m.Headers = append(m.Headers, vm)
	}
	for _, q := range em.QueryParameters {
		vm := ValueMatch{Name: q.Name}
		switch {
		case q.StringMatch != nil && q.StringMatch.Exact != nil:
			vm.Kind, vm.Value = "exact", *q.StringMatch.Exact
		case q.StringMatch != nil && q.StringMatch.SafeRegex != nil:
			vm.Kind, vm.Value = "regex", q.StringMatch.SafeRegex.Regex
		case q.PresentMatch != nil:
			vm.Kind = "present"
		default:
			return m, "", fmt.Errorf("query parameter matcher %s of an unknown kind", q.Name)
		}
		m.Query = append(m.Query, vm)
	}
	return m, xfp, nil
}
