package netns

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// A namespace's loopback is not the host's: a server inside it cannot be
// reached from the host's 127.0.0.1. Unix sockets live on the file system,
// which both sides share, so a port is exposed in two hops:
//
//	host 127.0.0.1:P --(Expose, on the host)--> socket file --(Bridge, inside)--> server
//
// Both hops only ever connect to loopback or to a socket file.

// Expose listens on hostAddr (a loopback address of the host) and relays
// every connection to the Unix socket at socket, until ctx ends.
func Expose(ctx context.Context, hostAddr, socket string) (net.Addr, error) {
	l, err := net.Listen("tcp", hostAddr)
	if err != nil {
		return nil, err
	}
	go relay(ctx, l, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	})
	return l.Addr(), nil
}

// Bridge listens on the Unix socket at socket and relays every connection
// to target, a TCP address inside the namespace, until ctx ends.
func Bridge(ctx context.Context, socket, target string) error {
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	go relay(ctx, l, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", target)
	})
	return nil
}

func relay(ctx context.Context, l net.Listener, dial func(context.Context) (net.Conn, error)) {
	go func() { <-ctx.Done(); l.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		in, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			out, err := dial(ctx)
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			select {
			case <-done:
			case <-ctx.Done():
			}
		}()
	}
}
