package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// forceExit ends the process on a second stop signal; a variable so the
// test can see it called without dying.
var forceExit = os.Exit

// shutdownGrace bounds how long in-flight API requests may take to finish
// once a stop signal arrives.
const shutdownGrace = 10 * time.Second

// run starts meshd and blocks until a signal on sigs stops it. It returns
// the exit status: 0 after a clean stop, 1 on a runtime failure or a second
// signal, 2 for bad flags or config.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	s, cli, err := parseCommand(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && cli.version {
		printVersion(stdout)
		return 0
	}
	if err == nil {
		err = checkSettings(&s)
	}
	if err != nil {
		fmt.Fprintln(stderr, oneLine(err))
		return 2
	}
	switch {
	case cli.check:
		fmt.Fprintln(stdout, "meshd: settings OK")
		return 0
	case cli.printConfig:
		if err := printConfig(stdout, &s); err != nil {
			fmt.Fprintln(stderr, "meshd:", err)
			return 1
		}
		return 0
	}
	logger := newLogger(&s, stderr)
	if err := serve(&s, logger, stdout, sigs); err != nil {
		fmt.Fprintln(stderr, oneLine(err))
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// checkSettings does the checks that need more than the values: files.
func checkSettings(s *settings) error {
	token, err := readToken(s.APITokenFile)
	if err != nil {
		return err
	}
	if err := checkAPIExposure(s, token); err != nil {
		return err
	}
	cfg, err := s.nodeConfig(slog.Default())
	if err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// oneLine formats an error as the single stderr line the contract asks for.
func oneLine(err error) string {
	msg := err.Error()
	if errors.Is(err, errUsage) {
		msg = "meshd: " + msg[len(errUsage.Error())+2:]
	}
	for i, c := range msg {
		if c == '\n' {
			return msg[:i]
		}
	}
	return msg
}

func serve(s *settings, logger *slog.Logger, stdout io.Writer, sigs <-chan os.Signal) error {
	token, err := readToken(s.APITokenFile)
	if err != nil {
		return err
	}
	cfg, err := s.nodeConfig(logger)
	if err != nil {
		return err
	}
	sec, err := resolveSecret(s, logger)
	if err != nil {
		return err
	}
	if sec.key != nil {
		cfg.SwarmKey, cfg.SwarmKeyFile = swarmKeyFile(sec.key), ""
	}
	// Bind the API first: a busy port is the most common start failure and
	// should not cost a node start and stop.
	ln, err := net.Listen("tcp", s.API)
	if err != nil {
		return fmt.Errorf("meshd: cannot listen on --api %s: %v", s.API, err)
	}
	defer ln.Close()

	startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	n, err := node.New(startCtx, cfg)
	cancel()
	if err != nil {
		if errors.Is(err, node.ErrInvalidConfig) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return fmt.Errorf("meshd: starting node: %v", err)
	}
	// A clean stop announces the leave, so peers drop this node at once.
	closeNode := func() error {
		if err := n.Leave(context.Background()); err != nil {
			return fmt.Errorf("meshd: closing node: %v", err)
		}
		return nil
	}
	if err := sec.persist(); err != nil {
		closeNode()
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	if !s.Memory {
		reg.MustRegister(storeSizeGauge(s.Data))
	}
	done := make(chan struct{})
	leave := make(chan struct{}, 1) // POST /v1/leave: stop as on SIGTERM
	srv := &http.Server{
		Handler: httpapi.NewHandler(n, httpapi.Options{
			Token: token, Registry: reg, Logger: logger, Done: done,
			TempDir: restoreTempDir(s), JoinToken: tokenSource(s, sec, n),
			ExpectPeers: len(s.Join) > 0 || s.JoinToken != "",
			Leave: func(context.Context) error {
				select {
				case leave <- struct{}{}:
				default:
				}
				return nil
			},
		}),
		// No read or write timeout on the server: a watch streams for
		// hours. The handler bounds each body (httpapi.Options.BodyTimeout).
		ReadHeaderTimeout: apiHeaderTimeout,
		IdleTimeout:       apiIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(limitAPIListener(ln)) }()

	joins, _ := parseJoin(s.Join) // validated
	joinCtx, stopJoins := context.WithCancel(context.Background())
	joinsDone := make(chan struct{}, len(joins))
	for _, jt := range joins {
		go func() {
			defer func() { joinsDone <- struct{}{} }()
			runJoin(joinCtx, n, jt, token, logger)
		}()
	}
	stopJoining := func() {
		stopJoins()
		for range joins {
			<-joinsDone
		}
	}

	fmt.Fprintf(stdout, "meshd: peer ID %s\n", n.ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(stdout, "meshd: listening on %s\n", a)
	}
	printSecret(stdout, s, sec, n)
	fmt.Fprintf(stdout, "meshd: API on http://%s\n", ln.Addr())
	logger.Info("meshd started", "peer", n.ID(), "mesh", s.Mesh, "api", ln.Addr().String(), "memory", s.Memory)
	if token == "" && !isLoopback(s.API) {
		logger.Warn("the HTTP API is served to the network WITHOUT a token (--api-insecure)", "api", ln.Addr().String())
	}

	var runErr error
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(s, n, logger)
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
		case <-leave:
			logger.Info("shutting down: asked to leave the mesh (POST /v1/leave)")
		case err := <-served:
			runErr = fmt.Errorf("meshd: API server: %v", err)
		}
		break wait
	}
	// A second stop signal while we wait on a slow shutdown forces the exit.
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				logger.Warn("second signal, exiting now", "signal", sig.String())
				forceExit(1)
			}
		}
	}()
	stopJoining()
	close(done) // ends watch streams so Shutdown need not wait on them
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("API shutdown incomplete", "err", err)
	}
	if err := closeNode(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		logger.Info("stopped cleanly")
	}
	return runErr
}

// restoreTempDir spools restore uploads inside the data directory: on an
// edge device /tmp is often a small tmpfs, the data disk is where room is.
func restoreTempDir(s *settings) string {
	if s.Memory {
		return ""
	}
	dir := filepath.Join(s.Data, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}

// storeSizeGauge reports the bytes under the data directory at scrape
// time. Pebble keeps a few dozen files, so walking them is cheap.
func storeSizeGauge(dir string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gossipmesh_store_bytes",
		Help: "Bytes on disk under the data directory (store, identity, spooled restores).",
	}, func() float64 {
		var total int64
		_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // files come and go under compaction
			}
			if info, err := d.Info(); err == nil && !d.IsDir() {
				total += info.Size()
			}
			return nil
		})
		return float64(total)
	})
}
