package controller

import (
	"os"

	clientfeatures "k8s.io/client-go/features"
)

// UsePlainLists makes this process's informers fill their caches with a
// plain LIST, not a streaming list (client-go's WatchListClient feature, on
// by default since client-go 1.35), unless $KUBE_FEATURE_WatchListClient
// says otherwise. Call it first thing, before any client exists: client-go's
// feature gates are process-wide.
//
// Why: a streaming list ends with a bookmark, and the API server sends
// bookmarks on a timer of about a second (k8s.io/apiserver's cacher, a
// jittered 1 s), so every cache took about 1.1 s to sync where a LIST takes
// tens of milliseconds. crossmap waits for its caches before it writes
// anything, at every start and every reconnect to a remote cluster: at 1000
// exported Services the initial convergence went from 15.0 to 13.5 s
// (medians of three). A streaming list saves the memory of one LIST
// response while the cache fills; crossmap keeps every listed object in its
// cache anyway, and its peak RSS measured the same either way.
func UsePlainLists() {
	if _, set := os.LookupEnv("KUBE_FEATURE_" + string(clientfeatures.WatchListClient)); set {
		return
	}
	clientfeatures.ReplaceFeatureGates(plainLists{clientfeatures.FeatureGates()})
}

// plainLists is client-go's feature gates with WatchListClient off.
type plainLists struct{ clientfeatures.Gates }

func (g plainLists) Enabled(f clientfeatures.Feature) bool {
	if f == clientfeatures.WatchListClient {
		return false
	}
	return g.Gates.Enabled(f)
}
