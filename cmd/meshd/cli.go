package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
	"github.com/gossipmesh/gossipmesh/internal/version"
	"github.com/prometheus/client_golang/prometheus"
)

// cliFlags are the flags that only make sense on the command line: they
// say what to do with the settings, so they have no config file key.
type cliFlags struct {
	config      string // --config FILE
	version     bool   // --version: print the version and exit
	check       bool   // --check: validate the settings (files too) and exit
	printConfig bool   // --print-config, or "meshd config print"
}

func (c *cliFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "TOML config `file`; its keys are these flag names, and flags given override it (example: cmd/meshd/meshd.example.toml)")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.BoolVar(&c.check, "check", false, "check the settings (config file, flags and the files they name) and exit: 0 if meshd would start with them")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective settings as a config file and exit (also: meshd config print)")
}

// configPrintArgs turns "meshd [flags] config print [flags]" into
// "meshd [flags] --print-config [flags]". The flags are parsed once to
// find where the subcommand stands: flag parsing stops at it.
func configPrintArgs(args []string) []string {
	var probe settings
	var cli cliFlags
	fs := flagSet(&probe, &cli, io.Discard)
	if fs.Parse(args) != nil || fs.NArg() < 2 || fs.Arg(0) != "config" || fs.Arg(1) != "print" {
		return args
	}
	before := args[:len(args)-fs.NArg()]
	return append(append(append([]string{}, before...), "--print-config"), fs.Args()[2:]...)
}

// printVersion prints what meshd --version says.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "meshd %s\n", version.Get())
}

// printConfig writes s as a TOML config file that --config reads back to
// the same settings.
func printConfig(w io.Writer, s *settings) error {
	out := *s
	// An empty list is printed as [] rather than left out: every key shows.
	for _, l := range []*[]string{&out.Listen, &out.Bootstrap, &out.Join, &out.Announce} {
		if *l == nil {
			*l = []string{}
		}
	}
	if out.Pin == nil {
		out.Pin = []uint32{}
	}
	fmt.Fprintln(w, "# meshd's effective settings (meshd config print); every key is a flag name.")
	return toml.NewEncoder(w).Encode(&out)
}

// buildInfo is the gossipmesh_build_info metric: always 1, the build in
// its labels, as Prometheus exporters do.
func buildInfo() prometheus.Collector {
	v := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gossipmesh_build_info",
		Help:        "Always 1; the labels say which build of meshd is running.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion},
	})
	g.Set(1)
	return g
}
