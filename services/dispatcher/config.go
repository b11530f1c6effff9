package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/net/idna"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/names"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultEnvironment is the environment served.
	DefaultEnvironment = config.DefaultEnvironment
	// DefaultBaseDomain is the base domain routed.
	DefaultBaseDomain = "do"
	// DefaultDefaultWorker serves the default hosts ("do", "api.do").
	DefaultDefaultWorker = "gateway"
	// DefaultRuntimeURL is the runtime's base URL.
	DefaultRuntimeURL = "http://" + config.DefaultRuntimeAddr
	// DefaultRefreshInterval is the time between reads of the live versions.
	DefaultRefreshInterval = 500 * time.Millisecond
	// DefaultRefreshTimeout bounds one read of the live versions.
	DefaultRefreshTimeout = 5 * time.Second
	// DefaultUpstreamTimeout bounds how long the runtime may take to send
	// the response headers of a request (the body may stream for longer).
	DefaultUpstreamTimeout = 60 * time.Second
	// DefaultStreamTimeout bounds how long a forwarded request's body or
	// response may make no progress.
	DefaultStreamTimeout = 60 * time.Second
	// DefaultDialTimeout bounds a connection attempt to the runtime.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxIdleConnsPerHost sizes the pool of idle connections to the
	// runtime, so that bursts reuse connections instead of dialing.
	DefaultMaxIdleConnsPerHost = 1024
	// DefaultMaxHeaderBytes bounds the request line and headers of a request
	// the dispatcher forwards; larger requests get a JSON 431.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultLogInterval is the least time between two log lines about the
	// same recurring failure.
	DefaultLogInterval = 30 * time.Second
)

// APILabel is the subdomain of a base domain that, like the base domain
// itself, is a default host (rules 4 and 5 in the package documentation).
const APILabel = "api"

// PathPrefix is the path prefix of the path rule: "/api/<worker>".
const PathPrefix = "/api/"

// DefaultWorkers is the allow-list of the original deployment.
var DefaultWorkers = []string{"gateway", "db", "auth", "schedule", "webhooks", "email", "mcp", "queue"}

// Config configures a Dispatcher. Zero fields take the defaults above.
type Config struct {
	// Environment is the environment whose workers are served
	// (DefaultEnvironment if empty).
	Environment string
	// Namespace is the environment's dispatch namespace. If empty,
	// config.DefaultNamespace(Environment), "dotdo-<Environment>", as in
	// config.DefaultEnvironments (the binary reads it from
	// DOTDO_ENVIRONMENTS). A live deployment recorded with another
	// namespace is served from the namespace it records.
	Namespace string
	// BaseDomains are the domains whose hosts are routed ([DefaultBaseDomain]
	// if empty). Internationalized names are converted to punycode.
	BaseDomains []string
	// Workers is the allow-list of workers (DefaultWorkers if nil). It must
	// hold DefaultWorker. Ignored when AnyWorker is set.
	Workers []string
	// AnyWorker allows every worker that has a live version in the
	// environment instead of the Workers list.
	AnyWorker bool
	// DefaultWorker serves the default hosts (DefaultDefaultWorker if empty).
	DefaultWorker string
	// RuntimeURL is the base URL of the runtime whose invocation endpoint
	// runs the workers (DefaultRuntimeURL if empty).
	RuntimeURL string
	// Runtime, when set, is a runtime in this process (runtime.Runtime, or
	// a wrapper of it): routed requests are handed to its Invoke, with no
	// connection, URL or credential in between, and RuntimeURL,
	// DialTimeout, MaxIdleConnsPerHost and WrapTransport are unused.
	// `dotdo dev` runs the dispatcher so.
	Runtime LocalRuntime
	// InvokeToken is the runtime's invocation credential. Required.
	InvokeToken string
	// RefreshInterval is the time between reads of the live versions
	// (DefaultRefreshInterval if zero).
	RefreshInterval time.Duration
	// RefreshTimeout bounds one read of the live versions
	// (DefaultRefreshTimeout if zero).
	RefreshTimeout time.Duration
	// UpstreamTimeout bounds the wait for the response headers of the
	// runtime, from when it has the whole request; past it the client gets
	// 504 (DefaultUpstreamTimeout if zero). The response body may then
	// stream for as long as it makes progress (StreamTimeout).
	UpstreamTimeout time.Duration
	// StreamTimeout bounds how long the body of a forwarded request may go
	// unread, and its response unwritten, for want of progress on the
	// client's side: each read and each write gets StreamTimeout
	// (DefaultStreamTimeout if zero). It replaces the http.Server's
	// ReadTimeout and WriteTimeout for forwarded requests, so that a long
	// upload, download or event stream lasts as long as it makes progress.
	// An upgraded connection (WebSocket) has no deadline: it lasts until one
	// side closes it.
	StreamTimeout time.Duration
	// DialTimeout bounds a connection attempt to the runtime
	// (DefaultDialTimeout if zero).
	DialTimeout time.Duration
	// MaxIdleConnsPerHost sizes the idle connection pool to the runtime
	// (DefaultMaxIdleConnsPerHost if zero).
	MaxIdleConnsPerHost int
	// MaxHeaderBytes bounds the request line and headers of a forwarded
	// request (DefaultMaxHeaderBytes if zero); larger requests get a JSON
	// 431. Keep the http.Server's MaxHeaderBytes above it: past the server's
	// own limit, net/http answers 431 itself, in plain text.
	MaxHeaderBytes int
	// TrustForwardedHeaders keeps the X-Forwarded-For chain and the
	// X-Forwarded-Proto that clients send; set it only behind a proxy that
	// sets them. Otherwise they are replaced by what the dispatcher sees.
	TrustForwardedHeaders bool
	// LogInterval is the least time between two log lines about the same
	// recurring failure (DefaultLogInterval if zero).
	LogInterval time.Duration
	// WrapTransport, when set, wraps the transport to the runtime, for
	// example to trace the upstream requests.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Logger receives the dispatcher's logs (slog.Default() if nil).
	Logger *slog.Logger
	// MeterProvider receives the dispatcher's metrics (see MetricRequests
	// and the other Metric* names), on a meter named MeterName; nil
	// records them nowhere. The global OpenTelemetry provider is never
	// used.
	MeterProvider metric.MeterProvider
}

// withDefaults returns c with defaults applied and its names normalized, or
// an error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Environment, DefaultEnvironment)
	def(&c.Namespace, config.DefaultNamespace(c.Environment))
	def(&c.DefaultWorker, DefaultDefaultWorker)
	def(&c.RuntimeURL, DefaultRuntimeURL)
	defDur(&c.RefreshInterval, DefaultRefreshInterval)
	defDur(&c.RefreshTimeout, DefaultRefreshTimeout)
	defDur(&c.UpstreamTimeout, DefaultUpstreamTimeout)
	defDur(&c.DialTimeout, DefaultDialTimeout)
	defDur(&c.StreamTimeout, DefaultStreamTimeout)
	defDur(&c.LogInterval, DefaultLogInterval)
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.BaseDomains) == 0 {
		c.BaseDomains = []string{DefaultBaseDomain}
	}
	if c.Workers == nil {
		c.Workers = slices.Clone(DefaultWorkers)
	}

	switch {
	case c.InvokeToken == "":
		return c, errors.New("dispatcher: Config.InvokeToken is required")
	case !names.ValidScript(c.Namespace):
		return c, fmt.Errorf("dispatcher: namespace %q is not a valid namespace name", c.Namespace)
	case !names.ValidScript(c.DefaultWorker):
		return c, fmt.Errorf("dispatcher: default worker %q is not a valid worker name", c.DefaultWorker)
	case c.RefreshInterval < 0, c.RefreshTimeout < 0, c.UpstreamTimeout < 0, c.StreamTimeout < 0, c.DialTimeout < 0, c.LogInterval < 0:
		return c, errors.New("dispatcher: durations must not be negative")
	case c.MaxIdleConnsPerHost < 0, c.MaxHeaderBytes < 0:
		return c, errors.New("dispatcher: sizes must not be negative")
	}
	for _, w := range c.Workers {
		if !names.ValidScript(w) {
			return c, fmt.Errorf("dispatcher: worker %q is not a valid worker name", w)
		}
	}
	if !c.AnyWorker && !slices.Contains(c.Workers, c.DefaultWorker) {
		return c, fmt.Errorf("dispatcher: default worker %q is not on the worker allow-list %v", c.DefaultWorker, c.Workers)
	}
	domains := make([]string, 0, len(c.BaseDomains))
	for _, d := range c.BaseDomains {
		n, err := normalizeBaseDomain(d)
		if err != nil {
			return c, err
		}
		if !slices.Contains(domains, n) {
			domains = append(domains, n)
		}
	}
	// Longest first, so that a host below two base domains ("x.a.do" with
	// "do" and "a.do") is read against the more specific one.
	slices.SortStableFunc(domains, func(a, b string) int { return len(b) - len(a) })
	c.BaseDomains = domains
	u, err := url.Parse(c.RuntimeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return c, fmt.Errorf("dispatcher: runtime URL %q: want http(s)://host[:port][/path]", c.RuntimeURL)
	}
	if u.EscapedPath() != u.Path {
		return c, fmt.Errorf("dispatcher: runtime URL %q: the path must need no escaping", c.RuntimeURL)
	}
	return c, nil
}

// normalizeBaseDomain returns d in the form hosts are compared with: ASCII
// (punycode), lower case, without a trailing dot.
func normalizeBaseDomain(d string) (string, error) {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if err != nil {
		return "", fmt.Errorf("dispatcher: base domain %q: %v", d, err)
	}
	h, err := parseHost(a)
	if err != nil || h.ip || a == "" || a != h.name {
		return "", fmt.Errorf("dispatcher: base domain %q is not a domain name", d)
	}
	return h.name, nil
}
