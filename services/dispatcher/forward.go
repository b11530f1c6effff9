package dispatcher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dot-do/platform/internal/progress"
)

// A routed request reaches the runtime's invocation endpoint in one of two
// ways, which send the runtime the same request:
//
//   - over HTTP (Config.RuntimeURL): httputil.ReverseProxy with a pooled
//     HTTP/1.1 transport; rewrite, modifyResponse and proxyError are its
//     hooks.
//   - in process (Config.Runtime): forwardLocal hands the request to the
//     runtime's Invoke, with no connection, copy or parse in between.

// LocalRuntime is a runtime in the dispatcher's process. Invoke runs r on
// version of worker in namespace and writes the worker's answer to w, as
// the runtime's invocation endpoint does over HTTP: r's URL path and query
// are the worker's, host and proto the host and scheme of the URL the
// worker sees, and r's headers already are the worker's (hop-by-hop
// headers removed, X-Forwarded-* and the request id set).
type LocalRuntime interface {
	Invoke(w http.ResponseWriter, r *http.Request, namespace, worker string, version int64, host, proto string)
}

// invokeURL returns the URL of the invocation endpoint for the worker
// version of route and the inbound URL in: the invocation prefix, then the
// path and query as sent.
func (d *Dispatcher) invokeURL(in *url.URL, route Route) *url.URL {
	prefix := d.invokeBase + InvokePrefix + route.Namespace + "/" + route.Worker + "/" + strconv.FormatInt(route.Version, 10)
	// Names are [a-z0-9_-] and the base path needs no escaping, so prefix
	// is its own escaped form and RawPath stays a valid encoding of Path.
	out := &url.URL{Path: prefix + in.Path, RawQuery: in.RawQuery}
	if in.RawPath != "" {
		out.RawPath = prefix + in.RawPath
	}
	if d.local == nil {
		out.Scheme, out.Host = d.base.Scheme, d.base.Host
	}
	return out
}

// forwardedHeaders are the headers that describe earlier hops; clients'
// values are replaced (see Config.TrustForwardedHeaders).
var forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// setUpstreamHeaders sets, in h (the headers of the request to the
// runtime), X-Forwarded-For, -Host and -Proto as the inbound request in
// describes them, and the request id; it returns the scheme (http or
// https) the client used.
func (d *Dispatcher) setUpstreamHeaders(in *http.Request, h http.Header, id string) string {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	var prior []string
	if d.cfg.TrustForwardedHeaders {
		prior = in.Header.Values("X-Forwarded-For")
		if p := strings.ToLower(in.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			proto = p
		}
	}
	for _, k := range forwardedHeaders {
		delete(h, k)
	}
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	h["X-Forwarded-Host"] = []string{in.Host}
	if proto == "https" {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	h[RequestIDHeader] = []string{id}
	return proto
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// newProxy returns the transport and reverse proxy that forward requests
// to the runtime over HTTP.
func (d *Dispatcher) newProxy() (*http.Transport, *httputil.ReverseProxy) {
	cfg := d.cfg
	tr := &http.Transport{
		Proxy:                 nil, // the runtime is reached directly
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		// Pass bodies through as they are: no Accept-Encoding added, no
		// transparent decompression.
		DisableCompression: true,
		ReadBufferSize:     16 << 10,
		WriteBufferSize:    16 << 10,
	}
	var upstream http.RoundTripper = tr
	if cfg.WrapTransport != nil {
		upstream = cfg.WrapTransport(upstream)
	}
	return tr, &httputil.ReverseProxy{
		Rewrite:        d.rewrite,
		Transport:      upstream,
		ModifyResponse: d.modifyResponse,
		ErrorHandler:   d.proxyError,
		BufferPool:     bufferPool{},
		// Streamed responses (unknown length, text/event-stream) are
		// flushed after every write whatever this says; others are
		// written through the server's buffer.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
}

// rewrite turns the inbound request into a request to the runtime's
// invocation endpoint for the routed worker version. ReverseProxy has
// removed the hop-by-hop and forwarding headers already.
func (d *Dispatcher) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	// The worker sees the query as sent (ReverseProxy drops parameters it
	// cannot parse; the dispatcher does not parse them).
	pr.Out.URL = d.invokeURL(pr.In.URL, x.route)
	pr.Out.Host = ""
	d.setUpstreamHeaders(pr.In, pr.Out.Header, x.id)
	pr.Out.Header[InvokeTokenHeader] = []string{d.cfg.InvokeToken}
}

func (d *Dispatcher) modifyResponse(res *http.Response) error {
	x := res.Request.Context().Value(exchangeKey{}).(*exchange)
	x.status = res.StatusCode
	res.Header.Set(RequestIDHeader, x.id)
	return nil
}

// proxyError answers a request the runtime did not answer: 408 when the
// client stopped sending its body, 502 when the runtime cannot be reached
// or broke the exchange, 504 when it did not answer in time. A client that
// went away gets nothing.
func (d *Dispatcher) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := r.Context().Value(exchangeKey{}).(*exchange)
	if x.body.Stalled() { // before the context: a stalled body cancels it too
		d.bodyStalled(w, r, x)
		return
	}
	if r.Context().Err() != nil {
		x.status = StatusClientClosed
		return
	}
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		d.upstreamFailed(w, r, x, http.StatusBadGateway, "runtime_unreachable", UpstreamUnreachable, "the runtime is unreachable", err)
	case progress.IsTimeout(err):
		d.upstreamTimedOut(w, r, x, err)
	default:
		d.upstreamFailed(w, r, x, http.StatusBadGateway, "runtime_error", UpstreamError, "the runtime failed while handling the request", err)
	}
}

func (d *Dispatcher) upstreamTimedOut(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	d.upstreamFailed(w, r, x, http.StatusGatewayTimeout, "runtime_timeout", UpstreamTimeout,
		fmt.Sprintf("the worker did not answer within %s", d.cfg.UpstreamTimeout), err)
}

// bodyStalled answers a request whose body stopped coming: 408, closing an
// HTTP/1.1 connection, on which the rest of the body may still come.
// (On HTTP/2, Connection: close would shut down every stream of the
// connection.)
func (d *Dispatcher) bodyStalled(w http.ResponseWriter, r *http.Request, x *exchange) {
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = []string{"close"}
	}
	d.writeError(w, x, http.StatusRequestTimeout, "request_timeout",
		fmt.Sprintf("the request body made no progress for %s", d.cfg.StreamTimeout))
}

// upstreamFailed counts, logs (throttled) and answers a request that the
// runtime did not answer.
func (d *Dispatcher) upstreamFailed(w http.ResponseWriter, r *http.Request, x *exchange, status int, code, kind, msg string, err error) {
	d.metrics.upstreamError(context.WithoutCancel(r.Context()), x.route.Worker, kind)
	d.upstreamLog.failure(r.Context(), "dispatcher: runtime did not answer", "worker", x.route.Worker,
		"version", x.route.Version, "kind", kind, "request_id", x.id, "err", err.Error())
	d.writeError(w, x, status, code, msg)
}

// errSuperseded is what forwardLocal's runtime handler gets when it
// writes after the dispatcher took the answer over (a 504 or a 408).
var errSuperseded = errors.New("dispatcher: the runtime's answer came too late")

// forwardLocal hands r to the runtime's Invoke in this process. The
// runtime reads the client's body and writes the client's response as it
// goes, so both stream; the client's going away cancels the runtime's work
// through the context; hop-by-hop headers are removed as over HTTP. As over
// HTTP, a runtime that has not begun its answer within UpstreamTimeout of
// having the whole request is canceled and the client gets 504, once the
// runtime's Invoke has returned (the runtime returns at once when
// canceled); a body that stops coming gets 408.
func (d *Dispatcher) forwardLocal(w http.ResponseWriter, r *http.Request, x *exchange) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The request is the runtime's from here on: its headers become the
	// worker's in place (no copy), and only its context changes.
	out := r.WithContext(ctx)
	removeHopHeaders(out.Header)
	proto := d.setUpstreamHeaders(r, out.Header, x.id)

	w.Header()[RequestIDHeader] = []string{x.id} // for a hijacked (upgraded) answer too
	lw := &localWriter{ResponseWriter: w, x: x}
	// The wait for the answer starts once the runtime has the whole
	// request, as ResponseHeaderTimeout does over HTTP.
	timer := &onceTimer{d: d.cfg.UpstreamTimeout, f: func() {
		if lw.state.CompareAndSwap(waiting, superseded) {
			cancel()
		}
	}}
	defer timer.stop()
	if x.body == nil {
		timer.start()
	} else {
		x.body.WhenRead(timer.start)
	}
	d.local.Invoke(lw, out, x.route.Namespace, x.route.Worker, x.route.Version, r.Host, proto)
	timer.stop()

	if !x.body.Stalled() && lw.state.CompareAndSwap(waiting, answered) {
		// The runtime wrote nothing: net/http answers 200 with no body,
		// unless the client went away.
		x.status = http.StatusOK
		w.Header()[RequestIDHeader] = []string{x.id}
		if r.Context().Err() != nil {
			x.status = StatusClientClosed
		}
		return
	}
	if lw.state.Load() == answered {
		return
	}
	// Superseded (the timer fired), or nothing written and the body
	// stalled: the dispatcher answers.
	clear(w.Header())
	switch {
	case x.body.Stalled():
		d.bodyStalled(w, r, x)
	case r.Context().Err() != nil:
		x.status = StatusClientClosed
	default:
		d.upstreamTimedOut(w, r, x, context.DeadlineExceeded)
	}
}

// onceTimer runs f after d, counted from its first start, unless stopped
// first.
type onceTimer struct {
	d time.Duration
	f func()

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (o *onceTimer) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.t == nil && !o.stopped {
		o.t = time.AfterFunc(o.d, o.f)
	}
}

func (o *onceTimer) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = true
	if o.t != nil {
		o.t.Stop()
	}
}

// hopHeaders are the hop-by-hop request headers, which describe the
// client's connection and are not passed on (RFC 9110, section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopHeaders removes from h the hop-by-hop headers and those that
// its Connection header names, as ReverseProxy does on the HTTP link: "Te:
// trailers" is kept, and an upgrade request keeps "Connection: Upgrade" and
// its Upgrade header, which the runtime needs to upgrade.
func removeHopHeaders(h http.Header) {
	var upgrade string
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); strings.EqualFold(name, "Upgrade") {
				upgrade = h.Get("Upgrade")
			} else if name != "" {
				h.Del(name)
			}
		}
	}
	trailers := false
	for _, v := range h["Te"] {
		trailers = trailers || strings.Contains(strings.ToLower(v), "trailers")
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailers {
		h["Te"] = []string{"trailers"}
	}
	if upgrade != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{upgrade}
	}
}

// States of a localWriter.
const (
	waiting    int32 = iota // nothing written yet
	answered                // the runtime's answer has begun
	superseded              // the dispatcher answers instead (504, 408): the runtime's writes are dropped
)

// localWriter is the ResponseWriter the runtime gets in forwardLocal: it
// records the status, sets the request id, and drops the runtime's answer
// once the dispatcher has taken the answer over: after the upstream
// timeout, or when the request body stalled (the runtime's answer is then
// an error about the body it could not read).
type localWriter struct {
	http.ResponseWriter
	x     *exchange
	state atomic.Int32
}

// begin reports whether the runtime's answer may be written, starting it.
func (w *localWriter) begin() bool {
	return w.state.CompareAndSwap(waiting, answered) || w.state.Load() == answered
}

func (w *localWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if w.state.Load() == waiting {
			w.ResponseWriter.WriteHeader(code) // informational: 100, 103
		}
		return
	}
	if w.x.body.Stalled() {
		w.state.CompareAndSwap(waiting, superseded)
		return
	}
	if w.state.CompareAndSwap(waiting, answered) {
		w.x.status = code
		w.Header()[RequestIDHeader] = []string{w.x.id}
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *localWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.state.Load() != answered {
		return 0, errSuperseded
	}
	return w.ResponseWriter.Write(p)
}

// FlushError flushes the answer to the client (http.ResponseController).
func (w *localWriter) FlushError() error {
	w.WriteHeader(http.StatusOK)
	if w.state.Load() != answered {
		return errSuperseded
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush flushes the answer to the client (http.Flusher).
func (w *localWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection to the runtime for an upgraded protocol
// (http.ResponseController).
func (w *localWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.begin() {
		return nil, nil, errSuperseded
	}
	w.x.status = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the client's ResponseWriter, for
// deadlines and full duplex.
func (w *localWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
