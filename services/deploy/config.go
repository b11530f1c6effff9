package deploy

import (
	"fmt"
	"os"
	"time"

	"github.com/dot-do/platform/internal/config"
)

// Defaults of Config.
const (
	// DefaultCompatibilityDate is the workerd compatibility date of a deploy
	// that names none.
	DefaultCompatibilityDate = "2025-01-01"
	// DefaultMaxScriptBytes bounds the total size of a worker's modules
	// (10 MiB, Cloudflare's limit for paid plans).
	DefaultMaxScriptBytes = 10 << 20
	// DefaultLeaseTTL is how long the lease of a deploy lasts unless
	// renewed; it is renewed every third of it while the deploy runs. It is
	// also about how long Reconcile waits for a lease left by a process that
	// crashed.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultLeaseWait bounds how long a deploy waits for another deploy of
	// the same service and environment to finish.
	DefaultLeaseWait = 2 * time.Minute
	// DefaultUploadTimeout bounds one upload to the namespace backend.
	DefaultUploadTimeout = 2 * time.Minute
	// ServiceName is the name GetServiceInfo reports.
	ServiceName = "dotdo-deploy"
)

// Config configures a Service. The zero value is usable: every zero field
// takes its default.
type Config struct {
	// Environments are the environments deploys may target, in the order
	// GetServiceInfo and ListNamespaces report them;
	// config.DefaultEnvironments() when empty.
	Environments []config.Environment
	// DefaultCompatibilityDate applies to deploys without a compatibility
	// date; DefaultCompatibilityDate when empty.
	DefaultCompatibilityDate string
	// MaxScriptBytes bounds the total size of a worker's modules;
	// DefaultMaxScriptBytes when zero.
	MaxScriptBytes int64
	// Version is the build version reported by GetServiceInfo and Health;
	// "dev" when empty.
	Version string
	// URLTemplate, when set, gives the URL where the dispatcher serves a
	// deployed worker: "{service}", "{environment}" and "{namespace}" are
	// replaced, for example "https://{service}.example.com".
	URLTemplate string
	// URLEnvironments limits URLTemplate to these environments (those a
	// dispatcher serves); all environments when empty.
	URLEnvironments []string
	// LeaseTTL is the lifetime of a deploy lease; DefaultLeaseTTL when
	// zero.
	LeaseTTL time.Duration
	// LeaseWait bounds the wait for a busy lease; DefaultLeaseWait when
	// zero.
	LeaseWait time.Duration
	// UploadTimeout bounds one upload; DefaultUploadTimeout when zero.
	UploadTimeout time.Duration
	// HolderID names this process as a lease holder. It must be unique
	// per process; when empty it is made of the host name, the process id
	// and random bits.
	HolderID string
}

// ReadMaxBytes returns the request size the Connect handler must accept
// (rpc.WithReadMaxBytes) for a worker of MaxScriptBytes to arrive: base64
// in JSON grows it by a third, and the other fields and the multi-module
// framing need room too. A worker over the limit then gets
// ResourceExhausted naming the field, from the domain, rather than a
// transport error.
func (c Config) ReadMaxBytes() int {
	c = c.withDefaults()
	return int(c.MaxScriptBytes/3*4 + 2<<20)
}

func (c Config) withDefaults() Config {
	if len(c.Environments) == 0 {
		c.Environments = config.DefaultEnvironments()
	}
	if c.DefaultCompatibilityDate == "" {
		c.DefaultCompatibilityDate = DefaultCompatibilityDate
	}
	if c.MaxScriptBytes <= 0 {
		c.MaxScriptBytes = DefaultMaxScriptBytes
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseWait <= 0 {
		c.LeaseWait = DefaultLeaseWait
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = DefaultUploadTimeout
	}
	if c.HolderID == "" {
		host, _ := os.Hostname()
		c.HolderID = fmt.Sprintf("deploy/%s/%d/%s", host, os.Getpid(), randomHex(6))
	}
	return c
}

func (c Config) validate() error {
	if err := config.ValidateEnvironments(c.Environments); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if !validDate(c.DefaultCompatibilityDate) {
		return fmt.Errorf("deploy: invalid default compatibility date %q", c.DefaultCompatibilityDate)
	}
	if c.LeaseTTL < time.Second {
		return fmt.Errorf("deploy: lease ttl %v is under a second", c.LeaseTTL)
	}
	return nil
}
