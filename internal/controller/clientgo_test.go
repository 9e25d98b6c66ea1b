package controller

import (
	"testing"

	clientfeatures "k8s.io/client-go/features"
)

func TestUsePlainLists(t *testing.T) {
	before := clientfeatures.FeatureGates()
	t.Cleanup(func() { clientfeatures.ReplaceFeatureGates(before) })

	t.Run("env var set: left to it", func(t *testing.T) {
		t.Setenv("KUBE_FEATURE_WatchListClient", "true")
		UsePlainLists()
		if got := clientfeatures.FeatureGates(); got != before {
			t.Errorf("with $KUBE_FEATURE_WatchListClient set, the gates were replaced by %T", got)
		}
	})
	t.Run("default: streaming lists off, the rest as it was", func(t *testing.T) {
		UsePlainLists()
		gates := clientfeatures.FeatureGates()
		if gates.Enabled(clientfeatures.WatchListClient) {
			t.Error("WatchListClient enabled; want it off")
		}
		for _, f := range []clientfeatures.Feature{clientfeatures.InformerResourceVersion, clientfeatures.ClientsAllowCBOR} {
			if got, want := gates.Enabled(f), before.Enabled(f); got != want {
				t.Errorf("%s = %v; want %v, as before", f, got, want)
			}
		}
	})
}
