package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"
)

// DNS join timing: a dns:// join resolves its name every dnsResolveEvery,
// each lookup bounded by dnsLookupTimeout.
const (
	dnsResolveEvery  = 10 * time.Second
	dnsLookupTimeout = 5 * time.Second
)

// errDNSJoin marks a failed lookup of a --join dns:// name.
var errDNSJoin = errors.New("meshd: join dns")

// ipResolver is what a dns:// join needs of DNS; *net.Resolver is one.
type ipResolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

var _ ipResolver = net.DefaultResolver

// dnsJoin keeps a --join dns://NAME:PORT: every address NAME resolves to
// gets its own join (start, given the API URL http://IP:PORT, runs until
// its context ends), started when the address appears and stopped when it
// is gone from the answer. A failed lookup keeps the addresses known.
type dnsJoin struct {
	hostport string
	resolver ipResolver
	every    time.Duration
	start    func(ctx context.Context, base string)
	log      *slog.Logger
}

// run resolves and reconciles the joins until ctx ends, then waits for
// the joins it started.
func (j *dnsJoin) run(ctx context.Context) {
	running := map[string]context.CancelFunc{}
	done := make(chan struct{})
	started, failures := 0, 0
	defer func() {
		for _, stop := range running {
			stop()
		}
		for range started {
			<-done
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		bases, err := j.resolve(ctx)
		if err != nil {
			failures++
			j.logLookupFailure(failures, err)
		} else {
			failures = 0
			started += j.reconcile(ctx, running, bases, done)
		}
		timer.Reset(j.every)
	}
}

// dnsWarnAfter is the count of failed lookups in a row after which a dns
// join says so at warning level: the first ones are expected while the
// orchestrator starts the other tasks and publishes their names.
const dnsWarnAfter = 3

func (j *dnsJoin) logLookupFailure(failures int, err error) {
	if failures == dnsWarnAfter {
		j.log.Warn("join: name does not resolve yet, still trying", "name", j.hostport, "err", err)
		return
	}
	j.log.Debug("join: lookup failed, keeping the known addresses", "err", err)
}

// reconcile starts a join for each new base and stops those of the bases
// gone; it returns how many it started.
func (j *dnsJoin) reconcile(ctx context.Context, running map[string]context.CancelFunc, bases []string, done chan<- struct{}) int {
	for base, stop := range running {
		if !slices.Contains(bases, base) {
			j.log.Info("join: address gone from DNS", "name", j.hostport, "api", base)
			stop()
			delete(running, base)
		}
	}
	n := 0
	for _, base := range bases {
		if _, ok := running[base]; ok {
			continue
		}
		jctx, stop := context.WithCancel(ctx)
		running[base] = stop
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			j.start(jctx, base)
		}()
	}
	return n
}

// resolve returns the API URL of every address the name resolves to.
func (j *dnsJoin) resolve(ctx context.Context) ([]string, error) {
	host, port, err := net.SplitHostPort(j.hostport)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errDNSJoin, j.hostport, err)
	}
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	ips, err := j.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errDNSJoin, host, err)
	}
	bases := make([]string, 0, len(ips))
	for _, ip := range ips {
		base := "http://" + net.JoinHostPort(ip.String(), port)
		if !slices.Contains(bases, base) {
			bases = append(bases, base)
		}
	}
	return bases, nil
}

// runJoin keeps one --join until ctx ends: a URL's join loop, or a DNS
// name's join of every address it resolves to.
func runJoin(ctx context.Context, n joiner, jt joinTarget, token string, log *slog.Logger) {
	if jt.dns == "" {
		joinLoop(ctx, n, jt.base, token, log)
		return
	}
	j := &dnsJoin{
		hostport: jt.dns, resolver: net.DefaultResolver, every: dnsResolveEvery, log: log,
		start: func(ctx context.Context, base string) { joinLoop(ctx, n, base, token, log) },
	}
	j.run(ctx)
}
