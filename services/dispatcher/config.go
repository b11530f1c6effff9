package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/names"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultEnvironment is the environment served.
	DefaultEnvironment = config.DefaultEnvironment
	// DefaultRuntimeURL is the runtime's base URL.
	DefaultRuntimeURL = "http://" + config.DefaultRuntimeAddr
	// DefaultWatchBackoff is the longest wait before watching the routing
	// state again after a failed watch.
	DefaultWatchBackoff = 5 * time.Second
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
	// WatchBackoff is the longest wait before watching the routing state
	// again after a failed watch (DefaultWatchBackoff if zero); the first
	// wait is 50 ms, doubling after each failure.
	WatchBackoff time.Duration
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
	def(&c.RuntimeURL, DefaultRuntimeURL)
	defDur(&c.WatchBackoff, DefaultWatchBackoff)
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

	switch {
	case c.InvokeToken == "":
		return c, errors.New("dispatcher: Config.InvokeToken is required")
	case !names.ValidScript(c.Namespace):
		return c, fmt.Errorf("dispatcher: namespace %q is not a valid namespace name", c.Namespace)
	case c.WatchBackoff < 0, c.UpstreamTimeout < 0, c.StreamTimeout < 0, c.DialTimeout < 0, c.LogInterval < 0:
		return c, errors.New("dispatcher: durations must not be negative")
	case c.MaxIdleConnsPerHost < 0, c.MaxHeaderBytes < 0:
		return c, errors.New("dispatcher: sizes must not be negative")
	}
	u, err := url.Parse(c.RuntimeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return c, fmt.Errorf("dispatcher: runtime URL %q: want http(s)://host[:port][/path]", c.RuntimeURL)
	}
	if u.EscapedPath() != u.Path {
		return c, fmt.Errorf("dispatcher: runtime URL %q: the path must need no escaping", c.RuntimeURL)
	}
	return c, nil
}
