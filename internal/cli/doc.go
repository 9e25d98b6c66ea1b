// Package cli is the operators' side of the status stage and of setup: it
// reads a running controller's status API and renders it (`crossmap status`),
// links a remote cluster by minting read-only credentials there and writing
// the Link and its Secret here (`crossmap link`), and checks that a cluster
// is ready to run crossmap (`crossmap check`).
//
// Each command is an Options value, with BindFlags and a Validate that does
// no I/O, and a function that does the work against clients and an
// io.Writer, so that cmd/crossmap stays a thin parser and tests drive the
// same code against real API servers.
package cli
