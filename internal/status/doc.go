// Package status is the last stage of crossmap's pipeline: an in-memory
// model that the reconcilers keep up to date, and the HTTP status API that
// serves it. Handlers read the model only; they never call an API server, so
// /status stays fast and truthful even while a cluster is unreachable.
package status
