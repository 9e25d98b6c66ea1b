// Package remote is the watch stage for other clusters: one Watcher per Link
// keeps informer caches of the remote cluster's exported Services and their
// EndpointSlices (and, for the MCS role, its ServiceExports), tracks whether
// the remote API server answers, and nudges the Link's reconciler whenever
// anything changes.
//
// A Watcher never writes to its remote cluster; the credentials a Link
// carries only need get, list and watch. When the remote goes away the
// caches keep their last state, so the mirrors built from them are kept,
// and client-go's reflectors reconnect with backoff and re-list.
package remote
