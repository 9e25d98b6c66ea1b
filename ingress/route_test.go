package ingress

import (
	"maps"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// TestServedBy: the served-by header replaces any value the response has
// (append false), and an empty header name turns it off.
func TestServedBy(t *testing.T) {
	if got := ServedBy("", "east"); got != nil {
		t.Errorf("ServedBy(\"\", east) = %v, want nil", *got)
	}
	got := ServedBy("x-crossmap-cluster", "east")
	if got == nil || len(*got) != 1 {
		t.Fatalf("ServedBy = %v, want one header", got)
	}
	h := (*got)["x-crossmap-cluster"]
	if h.Value != "east" || h.Append == nil || *h.Append {
		t.Errorf("ServedBy header = %+v, want value east, append false", h)
	}
}

// TestSiblingMappingResponseHeaders: a sibling keeps the user's own
// add_response_headers and adds the route's on top, without touching the
// user's Mapping.
func TestSiblingMappingResponseHeaders(t *testing.T) {
	user := &ambv3.Mapping{Spec: ambv3.MappingSpec{Prefix: "/podinfo/", Service: "podinfo.test:9898",
		AddResponseHeaders: &map[string]ambv3.AddedHeader{"x-team": {Value: "blue"}, "x-crossmap-cluster": {Value: "mine"}}}}
	before := maps.Clone(*user.Spec.AddResponseHeaders)
	sib := SiblingMapping(user, RemoteRoute{Cluster: "dev", Service: ServiceRef{Name: "podinfo-dev", Namespace: "test", Port: 9898},
		ResponseHeaders: ServedBy("x-crossmap-cluster", "dev")})
	got := *sib.Spec.AddResponseHeaders
	if got["x-team"].Value != "blue" || got["x-crossmap-cluster"].Value != "dev" || len(got) != 2 {
		t.Errorf("sibling add_response_headers = %+v, want x-team blue and x-crossmap-cluster dev", got)
	}
	if !maps.Equal(*user.Spec.AddResponseHeaders, before) {
		t.Errorf("the user's add_response_headers changed: %+v", *user.Spec.AddResponseHeaders)
	}
	// Without route headers, the user's are copied as they are.
	plain := SiblingMapping(user, RemoteRoute{Cluster: "east", Service: ServiceRef{Name: "podinfo-east", Namespace: "test", Port: 9898}})
	if !maps.Equal(*plain.Spec.AddResponseHeaders, before) {
		t.Errorf("weighted sibling add_response_headers = %+v, want the user's %+v", *plain.Spec.AddResponseHeaders, before)
	}
}
