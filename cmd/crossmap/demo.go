package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", `Runs the local two-cluster demo: real east and west control planes (kube-apiserver
and etcd from bin/, built by 'make tools'), crossmap in both, and the story of a
Service exported from east and mirrored into west, step by step.
Afterwards it keeps running so you can explore; Ctrl-C stops and cleans up.`, stderr)
	once := fs.Bool("once", false, "run the story, check every step, and exit: 0 only if every step behaved as expected")
	statusAddr := fs.String("status-addr", "127.0.0.1:8090", "loopback address for west's status API")
	logFile := fs.String("log-file", "", "write the controllers' logs to this file (default: discard)")
	level := &logLevel{level: zapcore.InfoLevel}
	fs.Var(level, "log-level", "log level of the controllers' logs: debug, info or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo takes no arguments, got %q", fs.Args())
	}
	logOut := io.Discard
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	setupLogging(level.level, logOut)
	return demo.Run(ctx, demo.Options{Once: *once, StatusAddr: *statusAddr, Out: stdout, Log: ctrl.Log})
}
