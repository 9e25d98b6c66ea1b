package e2e

import (
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

// untilTestEnds returns l that drops what is logged once t's cleanups
// have reached this point, so that a goroutine a controller leaves behind
// cannot log into a finished test, which panics the whole package.
// controller-runtime's manager does that: its stop procedure starts a
// goroutine that logs "Stopping and waiting for warmup runnables" and may
// run after Start has returned (seen once in seventeen runs of the drill
// suite). Call it before registering the cleanups that stop what logs, so
// that it closes after them.
func untilTestEnds(t *testing.T, l logr.Logger) logr.Logger {
	g := &logGate{}
	t.Cleanup(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
	})
	return logr.New(gatedSink{LogSink: l.GetSink(), g: g})
}

type logGate struct {
	mu     sync.Mutex
	closed bool
}

// gatedSink passes what is logged on while its gate is open. A line being
// written holds the gate, so the gate closes only between lines.
type gatedSink struct {
	logr.LogSink
	g *logGate
}

func (s gatedSink) Info(level int, msg string, kv ...any) {
	s.GetCallStackHelper()()
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if !s.g.closed {
		s.LogSink.Info(level, msg, kv...)
	}
}

func (s gatedSink) Error(err error, msg string, kv ...any) {
	s.GetCallStackHelper()()
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if !s.g.closed {
		s.LogSink.Error(err, msg, kv...)
	}
}

func (s gatedSink) WithValues(kv ...any) logr.LogSink {
	return gatedSink{LogSink: s.LogSink.WithValues(kv...), g: s.g}
}

func (s gatedSink) WithName(name string) logr.LogSink {
	return gatedSink{LogSink: s.LogSink.WithName(name), g: s.g}
}

// GetCallStackHelper passes testr's t.Helper on, so that a log line names
// the code that logged it, not this sink.
func (s gatedSink) GetCallStackHelper() func() {
	if h, ok := s.LogSink.(logr.CallStackHelperLogSink); ok {
		return h.GetCallStackHelper()
	}
	return func() {}
}
