// Package rewatch is the first stage of the pipeline, watch: it keeps the
// informers of crossmap's controller and of the dev edge watching their
// local API server through a restart of that server, so that the caches
// the snapshots are read from catch up within a fraction of a second of
// the server being back, not after client-go's reflector has sat out its
// backoff.
//
// A stock reflector ends its watch when the API server goes away, retries
// with a backoff that starts at 0.8–1.6 s and doubles, honours the
// Retry-After of a server still starting (5 s seen), and after a restart,
// whose watch cache has forgotten the old resource versions, relists only
// after yet another backoff step. Measured on the compound-fault suite the
// dev edge followed a Mapping written right after a local API server
// restart 3–6.7 s late (issue 13). Here the watch handed to the reflector
// outlives those events instead: it reopens itself, paced by its own short
// backoff, and when the server says the resource version is too old it
// lists again in place and passes the difference on as events, so the
// reflector and the informer's handlers see a watch that never broke.
package rewatch
