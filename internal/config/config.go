// Package config holds the settings of the twinstac server: their flags,
// their environment variables and their defaults. Every flag has an
// environment variable named TWINSTAC_ plus the flag name in upper case
// with dashes as underscores; a flag given on the command line wins.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Server are the settings of `twinstac serve`.
type Server struct {
	Addr             string
	DataDir          string
	DatabaseURL      string
	PublicURL        string
	MaxBodyBytes     ByteSize
	MaxAssetBytes    ByteSize
	CORSReadOrigins  []string
	CORSWriteOrigins []string
	LogLevel         string
	LogFormat        string
	AdminToken       string
	RateLimit        float64
	RateBurst        int
	CollectionGroup  string
	QuotaStored      ByteSize
	// QuotaRunningJobs and QuotaQueuedJobs are the default per-user job
	// limits (jobs queued or running at once; jobs queued); 0 is none.
	QuotaRunningJobs int
	QuotaQueuedJobs  int
	// ExpiryInterval is the time between passes of the expiry policy; 0
	// turns it off.
	ExpiryInterval time.Duration
	PrivateMetrics bool
	// CountBudget bounds the time a search spends counting its matches;
	// 0 turns counting off.
	CountBudget     time.Duration
	PprofAddr       string
	OIDCIssuer      string
	OIDCAudience    string
	OIDCUserClaim   string
	OIDCGroupsClaim string
	// SyncWait bounds how long a synchronous execution waits for its job.
	SyncWait time.Duration
	// CallbackAllow are the internal networks (CIDRs or addresses)
	// subscriber callbacks may reach; by default none.
	CallbackAllow []string
	// RedisURL is the Redis of the job queue; empty runs one in process.
	RedisURL string
	// NATSURL is the NATS server (JetStream enabled) events are
	// published on; empty runs one in process, its streams under the
	// data folder.
	NATSURL string
	// Node names this node in event subjects and its event stream;
	// the replicas of one node share it.
	Node string
	// Workers is how many jobs the in-process worker runs at once; 0
	// runs none (separate workers take the jobs).
	Workers int
	// PhaseTimeout bounds each lifecycle phase of a job.
	PhaseTimeout time.Duration
	// JobQueue names the asynq queue of jobs on Redis; servers and
	// workers that share a Redis but not a database need different ones.
	JobQueue string
	// ReconcileInterval is the time between the reconciler's passes,
	// and how long a job must be untouched before a pass looks at it.
	ReconcileInterval time.Duration
}

// Defaults returns the settings of a server started with no flags.
func Defaults() Server {
	return Server{
		Addr:            "127.0.0.1:8080",
		DataDir:         "./twinstac-data",
		MaxBodyBytes:    10 << 20,
		CountBudget:     50 * time.Millisecond,
		MaxAssetBytes:   5 << 30,
		CORSReadOrigins: []string{"*"},
		LogLevel:        "info",
		LogFormat:       "auto",
		Workers:         2,
		Node:            "local",
		PhaseTimeout:    time.Hour,
		SyncWait:        30 * time.Second,
		ExpiryInterval:  time.Minute,

		JobQueue:          "jobs",
		ReconcileInterval: 30 * time.Second,
	}
}

// StoreFlags registers the flags that choose the database (serve and migrate).
func (c *Server) StoreFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "folder for the embedded SQLite database and the blob files")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (postgres://user@host/db); empty uses the embedded SQLite database in the data folder")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json, text, or auto (JSON unless the output is a terminal)")
}

// ServeFlags registers the flags of `twinstac serve`.
func (c *Server) ServeFlags(fs *pflag.FlagSet) {
	c.StoreFlags(fs)
	fs.StringVar(&c.Addr, "addr", c.Addr, "address to listen on (host:port; port 0 picks a free port)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "external base URL used in links (default: derived from each request)")
	fs.Var(&c.MaxBodyBytes, "max-body-size", "largest JSON request body, and largest item in a bulk load (e.g. 10MiB)")
	fs.Var(&c.MaxAssetBytes, "max-asset-size", "largest asset upload (e.g. 5GiB)")
	fs.StringSliceVar(&c.CORSReadOrigins, "cors-read-origins", c.CORSReadOrigins, "browser origins allowed to read (GET, HEAD); * for any")
	fs.StringSliceVar(&c.CORSWriteOrigins, "cors-write-origins", c.CORSWriteOrigins, "browser origins allowed to write (POST, PUT, PATCH, DELETE) as well as read")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", c.OIDCIssuer, "URL of an OpenID Connect issuer whose tokens identify users (GitLab, Keycloak, ...)")
	fs.StringVar(&c.OIDCAudience, "oidc-audience", c.OIDCAudience, "the audience (aud) OIDC tokens must carry")
	fs.StringVar(&c.OIDCUserClaim, "oidc-user-claim", "sub", "the OIDC claim that names the user")
	fs.StringVar(&c.OIDCGroupsClaim, "oidc-groups-claim", "groups", "the OIDC claim that lists the user's groups")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "requests per second allowed per token (per user, per address for anonymous callers); 0: unlimited; admins are exempt")
	fs.IntVar(&c.RateBurst, "rate-burst", 0, "requests a caller may send at once under the rate limit (default: the rate, at least 1)")
	fs.Var(&c.QuotaStored, "quota-stored-bytes", "default limit of the asset bytes a user's collections hold (e.g. 50GiB); 0: unlimited; admins may override per user")
	fs.IntVar(&c.QuotaRunningJobs, "quota-running-jobs", c.QuotaRunningJobs, "default limit of a user's jobs queued or running at once; 0: unlimited; admins are exempt and may override per user")
	fs.IntVar(&c.QuotaQueuedJobs, "quota-queued-jobs", c.QuotaQueuedJobs, "default limit of a user's jobs waiting for a worker; 0: unlimited; admins are exempt and may override per user")
	fs.DurationVar(&c.ExpiryInterval, "expiry-interval", c.ExpiryInterval, "how often items whose expires time has passed are archived (or deleted, per collection dt:expiry); 0 turns it off")
	fs.DurationVar(&c.CountBudget, "search-count-budget", c.CountBudget, "how long a search may spend counting its matches (numberMatched, left out when the count takes longer); 0 turns counting off")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve Go runtime profiles (/debug/pprof/) on this loopback address, for performance work; empty: off")
	fs.BoolVar(&c.PrivateMetrics, "private-metrics", false, "serve /metrics to node administrators only")
	fs.StringVar(&c.CollectionGroup, "collection-creators", "", "the group whose members may create collections (admins always may); empty: every signed-in user")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "a secret that acts as a node-admin API token; without it the first start mints one and prints it once")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL of the job queue (redis://host:6379/0); empty runs an in-process Redis that lives as long as the server")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS URL (nats://host:4222, JetStream enabled) events are published on; empty runs an embedded NATS server with its streams in the data folder")
	fs.StringVar(&c.Node, "node", c.Node, "this node's name in event subjects (twinstac.<node>.…) and its event stream; replicas of one node share it, nodes sharing a NATS server need different ones")
	fs.DurationVar(&c.SyncWait, "sync-execute-wait", c.SyncWait, "how long an execution of a twin that allows synchronous runs waits for its job before it answers as a job")
	fs.IntVar(&c.Workers, "workers", c.Workers, "jobs the in-process worker runs at once; 0 runs none, for servers whose jobs separate workers run")
	c.phaseFlag(fs)
}

// WorkerFlags registers the flags of twinstac worker.
func (c *Server) WorkerFlags(fs *pflag.FlagSet) {
	c.StoreFlags(fs)
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL of the job queue the servers use (redis://host:6379/0)")
	fs.IntVar(&c.Workers, "concurrency", c.Workers, "jobs this worker runs at once")
	c.phaseFlag(fs)
}

// phaseFlag registers the flags of how jobs run, which servers and
// workers share.
func (c *Server) phaseFlag(fs *pflag.FlagSet) {
	fs.DurationVar(&c.PhaseTimeout, "phase-timeout", c.PhaseTimeout, "how long each lifecycle phase of a job may run")
	fs.StringVar(&c.JobQueue, "job-queue", c.JobQueue, "name of the job queue on Redis (asynq queues <name>-critical, <name> and <name>-low); deployments sharing a Redis need different ones")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", c.ReconcileInterval, "how often jobs stored but not queued are queued again and jobs whose worker was lost are ended, and how long a job must be untouched first")
	fs.StringSliceVar(&c.CallbackAllow, "callback-allow", c.CallbackAllow, "internal networks (CIDRs or addresses, e.g. 10.1.0.0/16) job callbacks may reach; loopback, private and link-local addresses are refused otherwise")
}

// EnvName returns the environment variable of a flag.
func EnvName(flag string) string {
	return "TWINSTAC_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// AnnotateEnv appends each flag's environment variable to its usage, so
// that --help lists them.
func AnnotateEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(f.Usage, "(env ") {
			f.Usage += " (env " + EnvName(f.Name) + ")"
		}
	})
}

// ApplyEnv sets every flag not given on the command line from its
// environment variable, when that is set.
func ApplyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if f.Value.Type() == "stringSlice" {
				if sv, ok := f.Value.(pflag.SliceValue); ok {
					err = sv.Replace(splitList(v))
					return
				}
			}
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, serr)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ByteSize is a size in bytes that parses "10MiB", "5GB", "512k" or a
// plain number.
type ByteSize int64

var units = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// Set implements pflag.Value.
func (b *ByteSize) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	factor := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, factor = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size such as 10MiB", s)
	}
	*b = ByteSize(n * float64(factor))
	return nil
}

// String implements pflag.Value.
func (b *ByteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		s string
		f int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.f && n%u.f == 0 {
			return strconv.FormatInt(n/u.f, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// Type implements pflag.Value.
func (b *ByteSize) Type() string { return "size" }
