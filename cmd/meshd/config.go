package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/gossipmesh/gossipmesh/node"
	"github.com/multiformats/go-multiaddr"
)

// errUsage marks bad flags or a bad config file: exit status 2.
var errUsage = errors.New("meshd: bad usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// settings is everything meshd can be told, by flag or by config file. The
// TOML keys are the flag names, so one page of docs covers both.
type settings struct {
	Data          string        `toml:"data"`
	Listen        []string      `toml:"listen"`
	API           string        `toml:"api"`
	Bootstrap     []string      `toml:"bootstrap"`
	Join          []string      `toml:"join"`
	Announce      []string      `toml:"announce"`
	Mesh          string        `toml:"mesh"`
	SwarmKey      string        `toml:"swarm-key"`
	JoinToken     string        `toml:"join-token"`
	Open          bool          `toml:"open"`
	Allowlist     string        `toml:"allowlist"`
	EncryptionKey string        `toml:"encryption-key-file"`
	MDNS          bool          `toml:"mdns"`
	Memory        bool          `toml:"memory"`
	Partitions    int           `toml:"partitions"`
	Replication   int           `toml:"replication"`
	Pin           []uint32      `toml:"pin"`
	APITokenFile  string        `toml:"api-token-file"`
	APIInsecure   bool          `toml:"api-insecure"`
	LogFormat     string        `toml:"log-format"`
	LogLevel      string        `toml:"log-level"`
	SyncInterval  time.Duration `toml:"sync-interval"`
	Grace         time.Duration `toml:"tombstone-grace"`
	MaxValueBytes int           `toml:"max-value-bytes"`
	MinFreeBytes  int64         `toml:"min-free-bytes"`
	BallastBytes  int64         `toml:"ballast-bytes"`
	MaxStoreBytes int64         `toml:"max-store-bytes"`

	tokenKey []byte // the mesh secret --join-token carries (applyJoinToken)
}

// defaultP2PPort is meshd's libp2p port, for TCP and QUIC alike. It is
// fixed, unlike the library's (the OS picks), so the address another node
// bootstraps to survives a restart, as kubo's 4001 does.
const defaultP2PPort = 7800

// defaultAPI is the HTTP API's default address: loopback only.
const defaultAPI = "127.0.0.1:7700"

// defaultListen is meshd's default --listen: TCP and QUIC on every IPv4
// interface, on defaultP2PPort.
func defaultListen() []string {
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", defaultP2PPort),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", defaultP2PPort),
	}
}

func defaultSettings() settings {
	d := node.DefaultConfig()
	return settings{
		Data: d.DataDir, Listen: defaultListen(), API: defaultAPI, Mesh: d.Mesh,
		MDNS: d.MDNS, Partitions: d.Partitions, LogFormat: "text", LogLevel: "info",
		SyncInterval: d.SyncInterval, Grace: d.TombstoneGrace, MaxValueBytes: d.MaxValueBytes,
		MinFreeBytes: d.MinFreeBytes, BallastBytes: d.BallastBytes, MaxStoreBytes: d.MaxStoreBytes,
	}
}

// listFlag is a repeatable string flag. The first use on the command line
// replaces the default (or the file's list) rather than appending to it.
type listFlag struct {
	v   *[]string
	set bool
}

func (l *listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		*l.v, l.set = nil, true
	}
	*l.v = append(*l.v, s)
	return nil
}

// pinFlag is a repeatable partition-number flag; like listFlag, the
// command line replaces the file's list.
type pinFlag struct {
	v   *[]uint32
	set bool
}

func (p *pinFlag) String() string {
	if p.v == nil {
		return ""
	}
	return fmt.Sprint(*p.v)
}

func (p *pinFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("partition must be a non-negative integer, got %q", s)
	}
	if !p.set {
		*p.v, p.set = nil, true
	}
	*p.v = append(*p.v, uint32(n))
	return nil
}

// flagSet declares meshd's flags over s, and the command-line-only ones
// over cli.
func flagSet(s *settings, cli *cliFlags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("meshd", flag.ContinueOnError)
	fs.SetOutput(out)
	cli.declare(fs)
	fs.StringVar(&s.Data, "data", s.Data, "`dir`ectory for the store and the node identity")
	fs.Var(&listFlag{v: &s.Listen}, "listen", "libp2p listen `multiaddr` (repeatable; a port another process holds is refused)")
	fs.StringVar(&s.API, "api", s.API, "HTTP API address `host:port` (port 0 picks one)")
	fs.Var(&listFlag{v: &s.Bootstrap}, "bootstrap", "bootstrap peer `multiaddr` with /p2p/PEERID (repeatable)")
	fs.Var(&listFlag{v: &s.Join}, "join", "HTTP API `url` of a peer (http://node1:7700) to ask for its addresses and dial, retrying until it answers and whenever it drops; or dns://NAME:PORT to join every address NAME resolves to, resolved again every 10s (repeatable)")
	fs.Var(&listFlag{v: &s.Announce}, "announce", "`multiaddr` peers should dial, advertised instead of the listen addresses when those are not reachable as is (repeatable)")
	fs.StringVar(&s.Mesh, "mesh", s.Mesh, "mesh `name`; peers of other meshes are refused")
	fs.StringVar(&s.SwarmKey, "swarm-key", s.SwarmKey, "pre-shared swarm key `file` for a private mesh (default: the mesh secret in the data directory, made on the first start)")
	fs.StringVar(&s.JoinToken, "join-token", s.JoinToken, "join the private mesh whose `token` another node printed (meshctl token prints it again): its secret, identity and members")
	fs.BoolVar(&s.Open, "open", s.Open, "an open mesh: no mesh secret, any node that finds this one may join (without it a fresh node makes its own secret)")
	fs.StringVar(&s.Allowlist, "allowlist", s.Allowlist, "`file` of peer IDs (one a line, # comments); only they may connect")
	fs.StringVar(&s.EncryptionKey, "encryption-key-file", s.EncryptionKey, "`file` with a 32-byte key (64 hex characters) to encrypt stored values; backups are then sealed too, and restore only on a node with this key")
	fs.BoolVar(&s.MDNS, "mdns", s.MDNS, "discover peers on the LAN with mDNS")
	fs.BoolVar(&s.Memory, "memory", s.Memory, "keep everything in memory (no disk, fresh identity)")
	fs.IntVar(&s.Partitions, "partitions", s.Partitions, "partition `count`, fixed for the life of the mesh")
	fs.IntVar(&s.Replication, "replication", s.Replication, "replication factor `R`: holders per partition (0: every node holds all)")
	fs.Var(&pinFlag{v: &s.Pin}, "pin", "hold `partition` whatever the placement (repeatable)")
	fs.StringVar(&s.APITokenFile, "api-token-file", s.APITokenFile, "`file` holding a bearer token the HTTP API will require")
	fs.BoolVar(&s.APIInsecure, "api-insecure", s.APIInsecure, "serve the API on a non-loopback address without a token (refused otherwise)")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "log format: text or json (fields holding a duration name its unit: took_seconds)")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&s.SyncInterval, "sync-interval", s.SyncInterval, "mean `time` between anti-entropy rounds")
	fs.DurationVar(&s.Grace, "tombstone-grace", s.Grace, "`time` a delete is kept before it is collected, and the longest absence after which a node serves its old values only once a peer confirms them")
	fs.IntVar(&s.MaxValueBytes, "max-value-bytes", s.MaxValueBytes, "largest value accepted, in `bytes`")
	fs.Int64Var(&s.MinFreeBytes, "min-free-bytes", s.MinFreeBytes, "free disk space floor of the store, in `bytes`: below it writes fail (HTTP 507) until space returns (0: no floor)")
	fs.Int64Var(&s.MaxStoreBytes, "max-store-bytes", s.MaxStoreBytes, "quota of the store, in `bytes`: at it writes fail (HTTP 507) and peers' states are not stored until deletes shrink it (0: no quota)")
	fs.Int64Var(&s.BallastBytes, "ballast-bytes", s.BallastBytes, "size in `bytes` of the ballast file made in the data directory, to delete when the disk is full (0: none)")
	return fs
}

// loadSettings is parseCommand for the settings alone.
func loadSettings(args []string, helpOut io.Writer) (settings, error) {
	s, _, err := parseCommand(args, helpOut)
	return s, err
}

// parseCommand parses args over the defaults, with a config file (when
// --config names one) between the two: defaults < file < flags.
func parseCommand(args []string, helpOut io.Writer) (settings, cliFlags, error) {
	args = configPrintArgs(args)
	// Pass 1 finds --config only; pass 2 applies the file, then the flags
	// again so that they win.
	var cli cliFlags
	probe := defaultSettings()
	fs := flagSet(&probe, &cli, io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flagSet(&probe, &cli, helpOut).PrintDefaults()
			return settings{}, cli, err
		}
		return settings{}, cli, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return settings{}, cli, usagef("unexpected argument %q (meshd takes only flags, or: meshd config print)", fs.Arg(0))
	}
	if cli.version {
		return settings{}, cli, nil
	}
	s := defaultSettings()
	if cli.config != "" {
		if err := readConfigFile(cli.config, &s); err != nil {
			return settings{}, cli, err
		}
	}
	if err := flagSet(&s, &cli, io.Discard).Parse(args); err != nil {
		return settings{}, cli, usagef("%v", err)
	}
	if err := s.applyJoinToken(); err != nil {
		return settings{}, cli, err
	}
	return s, cli, s.validate()
}

// readConfigFile decodes a TOML file over s, refusing keys it does not
// know: a misspelt key silently ignored is a setting silently lost.
func readConfigFile(path string, s *settings) error {
	md, err := toml.DecodeFile(path, s)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return usagef("config %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return usagef("config %s: %v", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return usagef("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	// TOML would take a bare integer as nanoseconds: sync-interval = 5
	// once ran anti-entropy millions of times a second.
	for _, key := range durationKeys {
		if md.IsDefined(key) && md.Type(key) != "String" {
			return usagef("config %s: %s needs a unit, as in %s = \"5s\"", path, key, key)
		}
	}
	return nil
}

// durationKeys are the config keys of durations, written as strings with
// a unit ("300ms", "5s").
var durationKeys = []string{"sync-interval", "tombstone-grace"}

// minSyncInterval is the shortest anti-entropy interval meshd accepts: a
// round is a session with a peer, and below this the rounds are overhead.
const minSyncInterval = 100 * time.Millisecond

// minTombstoneGrace is the shortest grace meshd accepts: a delete must
// reach every node (gossip, then anti-entropy rounds) well within it, or a
// node that missed it brings the key back once the others collected it.
const minTombstoneGrace = time.Minute

func (s *settings) validate() error {
	switch {
	case s.Partitions < 1 || s.Partitions > 1<<16:
		return usagef("--partitions must be in [1, 65536], got %d", s.Partitions)
	case s.Replication < 0:
		return usagef("--replication must not be negative, got %d", s.Replication)
	case s.Mesh == "":
		return usagef("--mesh must not be empty")
	case s.API == "":
		return usagef("--api must not be empty")
	case !s.Memory && s.Data == "":
		return usagef("--data must not be empty (or use --memory)")
	case s.LogFormat != "text" && s.LogFormat != "json":
		return usagef("--log-format must be text or json, got %q", s.LogFormat)
	case s.SyncInterval < minSyncInterval:
		return usagef("--sync-interval must be at least %v, got %v", minSyncInterval, s.SyncInterval)
	case s.Grace < minTombstoneGrace:
		return usagef("--tombstone-grace must be at least %v, got %v", minTombstoneGrace, s.Grace)
	case s.MaxValueBytes <= 0:
		return usagef("--max-value-bytes must be positive")
	case s.MinFreeBytes < 0:
		return usagef("--min-free-bytes must not be negative")
	case s.BallastBytes < 0:
		return usagef("--ballast-bytes must not be negative")
	case s.MaxStoreBytes < 0:
		return usagef("--max-store-bytes must not be negative")
	case s.Open && s.SwarmKey != "":
		return usagef("--open and --swarm-key contradict each other: an open mesh has no key")
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return err
	}
	if _, err := parseAddrs("--listen", s.Listen); err != nil {
		return err
	}
	if _, err := parseAddrs("--bootstrap", s.Bootstrap); err != nil {
		return err
	}
	if _, err := parseAddrs("--announce", s.Announce); err != nil {
		return err
	}
	if _, err := parseJoin(s.Join); err != nil {
		return err
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("--log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func parseAddrs(flagName string, ss []string) ([]multiaddr.Multiaddr, error) {
	out := make([]multiaddr.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, usagef("%s %q: %v", flagName, s, err)
		}
		if flagName == "--bootstrap" {
			if _, err := a.ValueForProtocol(multiaddr.P_P2P); err != nil {
				return nil, usagef("%s %q: must end in /p2p/PEERID", flagName, s)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// nodeConfig turns validated settings into a node.Config.
func (s *settings) nodeConfig(logger *slog.Logger) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.DataDir = s.Data
	cfg.Memory = s.Memory
	cfg.Mesh = s.Mesh
	cfg.Partitions = s.Partitions
	cfg.Replication = s.Replication
	cfg.Pinned = s.Pin
	cfg.MDNS = s.MDNS
	cfg.SyncInterval = s.SyncInterval
	cfg.TombstoneGrace = s.Grace
	cfg.MaxValueBytes = s.MaxValueBytes
	cfg.MinFreeBytes = s.MinFreeBytes
	cfg.BallastBytes = s.BallastBytes
	cfg.MaxStoreBytes = s.MaxStoreBytes
	cfg.Logger = logger
	var err error
	if cfg.ListenAddrs, err = parseAddrs("--listen", s.Listen); err != nil {
		return cfg, err
	}
	if cfg.Bootstrap, err = parseAddrs("--bootstrap", s.Bootstrap); err != nil {
		return cfg, err
	}
	if cfg.AnnounceAddrs, err = parseAddrs("--announce", s.Announce); err != nil {
		return cfg, err
	}
	// The node reads and checks these files itself (node.ErrInvalidConfig,
	// exit 2), so there is one parser for each format.
	cfg.SwarmKeyFile = s.SwarmKey
	cfg.AllowlistFile = s.Allowlist
	cfg.EncryptionKeyFile = s.EncryptionKey
	return cfg, nil
}

// readToken reads --api-token-file; an empty file is refused, since it
// would silently turn authentication off.
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("--api-token-file: %v", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usagef("--api-token-file %s is empty", path)
	}
	return tok, nil
}

func newLogger(s *settings, w io.Writer) *slog.Logger {
	level, _ := parseLevel(s.LogLevel) // validated
	opts := &slog.HandlerOptions{Level: level}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
