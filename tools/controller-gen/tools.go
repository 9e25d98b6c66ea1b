//go:build tools

// Package tools pins controller-gen, which writes crossmap's deepcopy code and
// CRDs. controller-gen is a main package, so it cannot be wrapped by a main.go
// of our own the way ../etcd is; this blank import only keeps it in go.mod,
// and tools/generate.sh runs
//
//	go build -o BIN/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen
//
// from this folder. It lives in its own module so that its k8s.io versions
// never drag on the main module's.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
