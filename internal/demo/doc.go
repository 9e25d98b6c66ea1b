// Package demo runs crossmap's story on this machine: three real control
// planes, a crossmap per cluster, dev edges as gateways and edge, mutual TLS
// between the clusters from one shared trust anchor, and each step of the
// pipeline (watch → translate → diff → apply → status) shown as it happens.
// It backs `crossmap demo` and `make demo`.
package demo
