package emissary_test

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/emissary/fixture"
)

// TestGroupKeyMatchesEmissary checks that the group key hashes to the group
// IDs Emissary's own tests expect.
func TestGroupKeyMatchesEmissary(t *testing.T) {
	fooHost := fixture.Host("foo-host", "foo.example.com", map[string]string{"host": "foo"})
	barHost := fixture.Host("bar-host", "bar.example.com", map[string]string{"host": "bar"})
	starFoo := fixture.Host("foo-host", "foo.example.com", map[string]string{"service": "star"})
	starBar := fixture.Host("bar-host", "bar.example.com", map[string]string{"service": "star"})
	noHostname := fixture.Spec(func(s *ambv3.MappingSpec) { s.Hostname = "" })

	for _, tc := range []struct {
		name    string
		source  string
		hosts   []*ambv3.Host
		mapping *ambv3.Mapping
		want    string
	}{{
		name:    "plain prefix",
		source:  "python/tests/unit/test_cache.py, check_group (Mapping prefix /foo/, group 3644d75e…)",
		mapping: fixture.Mapping("mapping1", "/foo/", "service1", noHostname),
		want:    "3644d75eb336f323bec43e48d4cfd8a950157607",
	}, {
		name:    "mappingSelector labels join the key when there is no hostname",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost, barHost},
		mapping: fixture.Mapping("star-backend-foo", "/test/", "star", noHostname, fixture.Labels("host", "foo")),
		want:    "3d04d59d417131b3e4b017d21216c109eda6ab65",
	}, {
		name:    "mappingSelector labels, other Host",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost, barHost},
		mapping: fixture.Mapping("star-backend-bar", "/test/", "star", noHostname, fixture.Labels("host", "bar")),
		want:    "22b4856cf2489452367a139b4d5dd7f5112e400b",
	}, {
		name:    "irrelevant labels do not count",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_irrelevant_labels_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost},
		mapping: fixture.Mapping("star-test-backend-foo", "/test/", "star-test", noHostname, fixture.Weight(10), fixture.Labels("host", "foo", "irrelevant-label", "2")),
		want:    "3d04d59d417131b3e4b017d21216c109eda6ab65",
	}, {
		name:    "hostname replaces the labels",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_and_hostname_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost, barHost},
		mapping: fixture.Mapping("star-backend-foo", "/test/", "star", fixture.Hostname("foo.example.com"), fixture.Labels("host", "foo")),
		want:    "1a5a176cc92a69ab669ac332644324fe7813e889",
	}, {
		name:    "deprecated host",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_and_host_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost, barHost},
		mapping: fixture.Mapping("star-backend-bar", "/test/", "star", noHostname, fixture.Spec(func(s *ambv3.MappingSpec) { s.DeprecatedHost = "bar.example.com" }), fixture.Labels("host", "bar")),
		want:    "71cf9a8de7cec920d057da6ae1a1d304dc599a05",
	}, {
		name:    "exact :authority header",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_and_authority_{in,out}.yaml",
		hosts:   []*ambv3.Host{fooHost, barHost},
		mapping: fixture.Mapping("star-backend-foo", "/test/", "star", noHostname, fixture.Headers(":authority", "foo.example.com"), fixture.Labels("host", "foo")),
		want:    "1a5a176cc92a69ab669ac332644324fe7813e889",
	}, {
		name:    "selected by two Hosts",
		source:  "python/tests/unit/testdata/canary_groups/mapping_selector_to_multiple_hosts_{in,out}.yaml",
		hosts:   []*ambv3.Host{starBar, starFoo},
		mapping: fixture.Mapping("star-backend", "/test/", "star", noHostname, fixture.Labels("service", "star")),
		want:    "75dd21c08e54514a335bf2d46a0ece5cbf738b0d",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var hosts []emissary.Host
			for _, h := range tc.hosts {
				hosts = append(hosts, emissary.HostOf(h))
			}
			sp := &tc.mapping.Spec
			key := emissary.GroupKey(sp, tc.mapping.Labels, emissary.MatchOf(sp), hosts)
			sum := sha1.Sum([]byte(key))
			if got := hex.EncodeToString(sum[:]); got != tc.want {
				t.Errorf("group ID of %q = %s, want %s (%s)", key, got, tc.want, tc.source)
			}
		})
	}
}

// TestHostglobMatches is Emissary's own table
// (python/tests/unit/test_hostglob_matches.py), both ways round.
func TestHostglobMatches(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", false},
		{"*", "foo.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*example.com", "b.example.com", true},
		{"*example.com", ".example.com", false},
		{"foo.example*", "foo.example.com.", true},
		{"*example.com", "example.com", false},
		{"*ple.com", "b.example.com", true},
		{"*.example.com", "a.example.org", false},
		{"*example.com", "a.example.org", false},
		{"*ple.com", "a.example.org", false},
		{"a.example.*", "a.example.com", true},
		{"a.example*", "a.example.com", true},
		{"a.exa*", "a.example.com", true},
		{"a.example.*", "a.example.org", true},
		{"a.example.*", "b.example.com", false},
		{"a.example*", "b.example.com", false},
		{"a.exa*", "b.example.com", false},
		{"a.*.com", "a.example.com", false},
		{"*.com", "a.example.com", true},
		{"*.com", "a.example.org", false},
		{"*.example.com", "*.example.com", true},
		{"*example.com", "*.example.com", true},
		{"*.example.com", "a.example.*", true},
		{"*.example.com", "a.b.example.*", true},
		{"*.example.baz.com", "a.b.example.*", true},
		{"*.foo.bar", "baz.zing.*", true},
		{"*.local:8500", "quote.local", false},
		{"*.local:8500", "quote.local:8500", true},
		{"*", "quote.local:8500", true},
		{"quote.*", "quote.local:8500", true},
		{"quote.*", "*.local:8500", true},
		{"quote.com:8500", "quote.com:8500", true},
	} {
		if got := emissary.HostglobMatches(tc.a, tc.b); got != tc.want {
			t.Errorf("hostglobMatches(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := emissary.HostglobMatches(tc.b, tc.a); got != tc.want {
			t.Errorf("hostglobMatches(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
