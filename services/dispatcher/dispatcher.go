package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/progress"
	"github.com/dot-do/platform/internal/routing"
)

// InvokeTokenHeader carries Config.InvokeToken to the runtime's invocation
// endpoint (the runtime's InvokeTokenHeader), which removes it before the
// worker sees the request.
const InvokeTokenHeader = "X-Dotdo-Invoke-Token"

// InvokePrefix is the path prefix of the runtime's invocation endpoint:
// /invoke/{namespace}/{script}/{version}/{path...}.
const InvokePrefix = "/invoke/"

// RequestIDHeader carries the request id, in requests to workers and in
// every response.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id that is kept.
const maxRequestIDLen = 128

// ErrInvalidURL is returned by Resolve for a URL that is not an absolute
// http or https URL with a host; its kind is errkind.Invalid.
var ErrInvalidURL = errkind.New(errkind.Invalid, "invalid URL")

// Dispatcher routes HTTP requests with its environment's routing table to
// the live versions of the workers and forwards them to the runtime. It is
// an http.Handler; Run keeps its routing state current.
type Dispatcher struct {
	cfg   Config
	src   Source
	state atomic.Pointer[state]

	// Exactly one of local and proxy is set: local is the runtime in this
	// process (Config.Runtime); proxy forwards over HTTP
	// through transport to base, under invokeBase.
	local      LocalRuntime
	base       *url.URL
	invokeBase string
	transport  *http.Transport
	proxy      *httputil.ReverseProxy
	metrics    *metrics

	watchLog    *throttledLog
	upstreamLog *throttledLog

	idPrefix string
	idSeq    atomic.Uint64

	// applyMu serializes the changes of state.
	applyMu sync.Mutex
}

// New returns a Dispatcher for cfg that learns its routing state from src.
// It starts nothing: call Run (in a goroutine) to load the state and keep
// it current; until the first snapshot, requests get 503.
func New(cfg Config, src Source) (*Dispatcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("dispatcher: a Source is required")
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	m.initSeries(context.Background(), seedRouter.Table().Workers)
	base, _ := url.Parse(cfg.RuntimeURL) // validated by withDefaults
	base.Path = strings.TrimSuffix(base.Path, "/")
	var seed [6]byte
	_, _ = rand.Read(seed[:])
	newLog := func() *throttledLog {
		return &throttledLog{logger: cfg.Logger, interval: cfg.LogInterval, now: time.Now}
	}
	d := &Dispatcher{
		cfg:         cfg,
		src:         src,
		base:        base,
		metrics:     m,
		watchLog:    newLog(),
		upstreamLog: newLog(),
		idPrefix:    hex.EncodeToString(seed[:]) + "-",
	}
	if cfg.Runtime != nil {
		d.local = cfg.Runtime
	} else {
		d.invokeBase = base.Path
		d.transport, d.proxy = d.newProxy()
	}
	return d, nil
}

// Config returns the dispatcher's configuration with defaults applied,
// without its InvokeToken (a secret).
func (d *Dispatcher) Config() Config {
	c := d.cfg
	c.InvokeToken = ""
	return c
}

// Close releases the idle connections to the runtime.
func (d *Dispatcher) Close() {
	if d.transport != nil {
		d.transport.CloseIdleConnections()
	}
}

// Route applies the routing table to a request for host (a Host header
// value) and path (as sent, escaped), with the current live versions. It is
// what ServeHTTP and Resolve use.
func (d *Dispatcher) Route(host, path string) Route {
	return d.route(d.state.Load(), host, path)
}

// Resolve routes an absolute http or https URL as ServeHTTP would route a
// request for it. A URL that no rule routes gets a Route with its Miss and
// Reason; only a URL that is not an absolute http(s) URL with a host gets an
// error, wrapping ErrInvalidURL.
func (d *Dispatcher) Resolve(rawURL string) (Route, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Route{}, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return Route{}, fmt.Errorf("%w: want an absolute http or https URL with a host", ErrInvalidURL)
	}
	return d.Route(u.Host, u.EscapedPath()), nil
}

// RoutesHost reports whether requests for host (a Host header value) are
// routed to workers: whether it is a base domain of the routing table or
// below one.
func (d *Dispatcher) RoutesHost(host string) bool {
	if s := d.state.Load(); s != nil {
		return s.router.RoutesHost(host)
	}
	return seedRouter.RoutesHost(host)
}

// exchange is the state of one forwarded request, shared by ServeHTTP and
// the reverse proxy's hooks through the request's context.
type exchange struct {
	start  time.Time
	id     string
	route  Route
	status int
	// body is the request body as forwarded, if there is one.
	body *progress.Body
}

type exchangeKey struct{}

// ServeHTTP routes r and forwards it to the runtime, or answers with a JSON
// error when it cannot.
func (d *Dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: time.Now(), id: d.requestID(r.Header.Get(RequestIDHeader))}
	defer d.finish(r.Context(), x)
	if r.Method == http.MethodConnect {
		d.writeError(w, x, http.StatusMethodNotAllowed, routing.CodeMethodNotAllowed, routing.MessageConnect)
		return
	}
	if n := headerBytes(r); n > d.cfg.MaxHeaderBytes {
		d.writeError(w, x, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			fmt.Sprintf("the request line and headers take %d bytes; the limit is %d", n, d.cfg.MaxHeaderBytes))
		return
	}
	x.route = d.Route(r.Host, r.URL.EscapedPath())
	if x.route.Miss != routing.MissNone {
		d.refuse(w, x)
		return
	}
	// Stream both ways at once: on HTTP/1.1, without full duplex, net/http
	// stops reading the request body once the worker's response starts.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	var release func()
	w, r, x.body, release = progress.Deadlines(w, r, rc, d.cfg.StreamTimeout)
	defer release()
	if d.local != nil {
		d.forwardLocal(w, r, x)
		return
	}
	d.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// finish records the metrics of a finished request.
func (d *Dispatcher) finish(ctx context.Context, x *exchange) {
	if x.status == 0 { // the proxy gave up mid-response (client or runtime went away)
		x.status = http.StatusBadGateway
		if ctx.Err() != nil {
			x.status = StatusClientClosed
		}
	}
	d.metrics.request(context.WithoutCancel(ctx), d.metricWorker(x.route), x.status, time.Since(x.start))
}

// metricWorker returns the worker label of a finished request: its worker
// when the request was forwarded or the worker is on the allow-list, else
// "". With subdomains_any_worker a request may name any worker, and a
// series for every name with nothing live would let clients grow the
// metrics without bound.
func (d *Dispatcher) metricWorker(r Route) string {
	if r.Version > 0 || r.Worker == "" {
		return r.Worker
	}
	if s := d.state.Load(); s != nil && s.router.Allowed(r.Worker) {
		return r.Worker
	}
	return ""
}

// refuse answers a request that the routing table does not forward, with
// the status, code and message of its miss.
func (d *Dispatcher) refuse(w http.ResponseWriter, x *exchange) {
	m := x.route.Miss
	status, code := m.Status(), m.Code()
	if m == routing.MissNotReady {
		w.Header().Set("Retry-After", "1")
	}
	if status == http.StatusNotFound {
		d.metrics.notFoundReason(context.Background(), code)
	}
	d.writeError(w, x, status, code, x.route.Reason)
}

// writeError writes the JSON error answer.
func (d *Dispatcher) writeError(w http.ResponseWriter, x *exchange, status int, code, msg string) {
	x.status = status
	writeJSONError(w, status, code, msg, x.id)
}

// requestID returns in when it is a well-formed request id (1 to 128 of
// A-Z a-z 0-9 - _ . : + / = @), else a new one.
func (d *Dispatcher) requestID(in string) string {
	if validRequestID(in) {
		return in
	}
	var b [40]byte
	buf := append(b[:0], d.idPrefix...)
	return string(strconv.AppendUint(buf, d.idSeq.Add(1), 36))
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.:+/=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerBytes approximates the size of r's request line and headers as
// sent on HTTP/1.1.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + 20
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// bufferPool lends the reverse proxy its copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
