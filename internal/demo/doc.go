// Package demo runs crossmap's story on this machine: two real control
// planes, a crossmap per cluster, and each step of the pipeline (watch →
// translate → diff → apply → status) shown as it happens. It backs
// `crossmap demo` and `make demo`.
package demo
