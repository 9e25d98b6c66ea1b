// Package netns gives the end-to-end tests and the demo a network of their
// own: it re-runs the program inside a new Linux network namespace, where
// the addresses that "pods" and gateways listen on are created on the
// namespace's loopback device. Every request those programs send therefore
// stays on this machine, to an address they created themselves, and can be
// checked to exist before it is sent.
//
// It sits under the whole pipeline, next to internal/testenv: the control
// planes and controllers run inside the namespace too.
package netns
