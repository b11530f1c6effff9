package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is a request for one worker version: which version, and the URL
// the worker sees.
type Target struct {
	Key
	// Host is the host of the worker's request URL (and its Host header).
	Host string
	// Proto is the scheme of the worker's request URL: "http" or "https".
	Proto string
	// Path is the escaped path of the worker's request URL, from "/".
	Path string
	// RawQuery is its query, without "?".
	RawQuery string
}

// Outcomes of an invocation, named as Cloudflare's tail events name them.
const (
	OutcomeOK             = "ok"
	OutcomeException      = "exception"
	OutcomeExceededCPU    = "exceededCpu"
	OutcomeExceededMemory = "exceededMemory"
	OutcomeCanceled       = "canceled"
	// OutcomeError means the runtime could not run the worker: no process
	// could start, or the process died for another reason than a limit.
	OutcomeError = "error"
)

// Invocation describes one request a worker served, for metrics and logs.
type Invocation struct {
	// Key is the version that ran (or was to run).
	Key Key
	// Start is when the request arrived; Duration how long it took until
	// the response ended.
	Start    time.Time
	Duration time.Duration
	// Status is the HTTP status sent (0 when none was).
	Status int
	// Outcome is one of the Outcome* constants.
	Outcome string
	// Scheduled is set for a run of the scheduled handler, Cron to its
	// cron expression ("" for a trigger by hand).
	Scheduled bool
	Cron      string
}

// CodeLowMemory is the "code" of the 503 answer to a request whose worker
// had no process and none could start because the machine is low on
// memory (ErrLowMemory).
const CodeLowMemory = "low_memory"

// WriteError writes the JSON error body of the invocation path:
// {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1, which a
// proxy does not forward.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// removeHopHeaders deletes h's hop-by-hop headers and the ones its
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), "upgrade") {
				return r.Header.Get("Upgrade") != ""
			}
		}
	}
	return false
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Invoke runs r on the worker version t names, in that version's workerd
// process (started if none runs), and streams the worker's response to w.
// Request and response bodies stream in both directions; WebSocket
// upgrades pass through. The caller must have removed its own credentials
// from r; r's headers are changed in place. Answers that are not the
// worker's are JSON errors (see WriteError).
func (s *Supervisor) Invoke(w http.ResponseWriter, r *http.Request, t Target) {
	start := time.Now()
	status, outcome := s.invoke(w, r, t)
	if s.opt.OnInvocation != nil {
		s.opt.OnInvocation(Invocation{Key: t.Key, Start: start, Duration: time.Since(start), Status: status, Outcome: outcome})
	}
}

func (s *Supervisor) invoke(w http.ResponseWriter, r *http.Request, t Target) (int, string) {
	ctx := r.Context()
	in, err := s.acquire(ctx, t.Key)
	if err != nil {
		return s.acquireError(w, ctx, t, err)
	}
	defer s.release(in)
	if isUpgrade(r) {
		return s.upgrade(w, r, in, t)
	}
	removeHopHeaders(r.Header)
	if t.Proto == "https" {
		r.Header["X-Dotdo-Proto"] = protoHTTPS
	} else {
		r.Header["X-Dotdo-Proto"] = protoHTTP
	}
	out := r.WithContext(ctx)
	out.URL = &url.URL{Scheme: "http", Host: "worker", Opaque: t.Path, RawQuery: t.RawQuery}
	out.Host = t.Host
	out.RequestURI = ""
	out.Close = false
	var res *http.Response
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		delete(out.Header, "Expect")
		res, err = in.pool.roundTrip(out)
	} else {
		res, err = in.tr.RoundTrip(out)
	}
	if err != nil {
		return s.processError(w, ctx, in, t, err)
	}
	defer res.Body.Close()
	if workerThrew(res) {
		s.log.Warn("worker threw exception", "worker", t.String())
		WriteError(w, http.StatusInternalServerError, "Worker threw exception")
		return http.StatusInternalServerError, OutcomeException
	}
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = vv
	}
	removeHopHeaders(h)
	w.WriteHeader(res.StatusCode)
	if err := copyBody(w, res); err != nil {
		if ctx.Err() != nil {
			return res.StatusCode, OutcomeCanceled
		}
		// The response has begun: the client can only learn of the
		// failure by the connection's end.
		s.log.Warn("workerd: response cut", "worker", t.String(), "err", err, "reason", in.endReason())
		panic(http.ErrAbortHandler)
	}
	for k, vv := range res.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	return res.StatusCode, OutcomeOK
}

// copyBody copies res's body to w, flushing after every read when the
// length is unknown (a stream) or the body is an event stream, so that
// each chunk reaches the client when the worker writes it.
func copyBody(w http.ResponseWriter, res *http.Response) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	stream := res.ContentLength < 0 || strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
	fl, _ := w.(http.Flusher)
	if !stream || fl == nil {
		_, err := io.CopyBuffer(w, res.Body, buf)
		return err
	}
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			fl.Flush()
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// workerThrew reports whether res is workerd's own answer to an uncaught
// exception in the worker: 500, "Internal Server Error" as plain text of
// length 21 without a content type, and the connection closed.
func workerThrew(res *http.Response) bool {
	if res.StatusCode != http.StatusInternalServerError || res.ContentLength != 21 || !res.Close ||
		res.Header.Get("Content-Type") != "" {
		return false
	}
	var b [21]byte
	n, _ := io.ReadFull(res.Body, b[:])
	return string(b[:n]) == "Internal Server Error"
}

// acquireError answers a request for which no process could be had.
func (s *Supervisor) acquireError(w http.ResponseWriter, ctx context.Context, t Target, err error) (int, string) {
	var se *StartupError
	switch {
	case ctx.Err() != nil:
		return 0, OutcomeCanceled
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusNotFound, "Worker not found")
		return http.StatusNotFound, OutcomeError
	case errors.As(err, &se):
		s.log.Warn("worker failed to start", "worker", t.String(), "err", se.Message)
		WriteError(w, http.StatusInternalServerError, "Worker failed to start")
		return http.StatusInternalServerError, OutcomeException
	case errors.Is(err, ErrLowMemory):
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": "Worker runtime is low on memory; try again", "code": CodeLowMemory})
		return http.StatusServiceUnavailable, OutcomeError
	case errors.Is(err, ErrBusy):
		WriteError(w, http.StatusServiceUnavailable, "Worker runtime at capacity; try again")
		return http.StatusServiceUnavailable, OutcomeError
	default:
		s.log.Error("workerd: no process for request", "worker", t.String(), "err", err)
		WriteError(w, http.StatusServiceUnavailable, "Worker runtime unavailable")
		return http.StatusServiceUnavailable, OutcomeError
	}
}

// limitWait bounds how long a request whose process died waits to learn
// why (the process's exit, and the last of its stderr).
const limitWait = time.Second

// processError answers a request that got no response from its process:
// with the limit the worker exceeded, or 502 when the process died
// otherwise.
func (s *Supervisor) processError(w http.ResponseWriter, ctx context.Context, in *instance, t Target, err error) (int, string) {
	if ctx.Err() != nil {
		return 0, OutcomeCanceled
	}
	// Wait for the process's end: its reason is final then (a heap abort
	// is read from its stderr), and a client that hears of a limit can
	// count on the next request finding a new process.
	select {
	case <-in.done:
	case <-time.After(limitWait):
	}
	switch in.endReason() {
	case endExceededCPU:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": "Worker exceeded its CPU time limit", "code": endExceededCPU, "limit_ms": in.cpuLimit.Milliseconds()})
		return http.StatusServiceUnavailable, OutcomeExceededCPU
	case endExceededMemory:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": "Worker exceeded its memory limit", "code": endExceededMemory, "limit_mb": in.memoryMB})
		return http.StatusServiceUnavailable, OutcomeExceededMemory
	}
	s.log.Warn("workerd: request failed", "worker", t.String(), "pid", in.pid, "process_alive", !in.exited(), "err", err)
	WriteError(w, http.StatusBadGateway, "Worker runtime failed while handling the request")
	return http.StatusBadGateway, OutcomeError
}

// upgrade passes an upgrade request (a WebSocket) through to in: both
// directions are copied until either side closes.
func (s *Supervisor) upgrade(w http.ResponseWriter, r *http.Request, in *instance, t Target) (int, string) {
	status, outcome := http.StatusSwitchingProtocols, OutcomeOK
	rp := &httputil.ReverseProxy{
		Transport: in.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &url.URL{Scheme: "http", Host: "worker", Opaque: t.Path, RawQuery: t.RawQuery}
			pr.Out.Host = t.Host
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
			pr.Out.Header.Set(protoHeader, t.Proto)
		},
		ModifyResponse: func(res *http.Response) error {
			status = res.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, outcome = s.processError(w, r.Context(), in, t, err)
		},
	}
	rp.ServeHTTP(w, r)
	return status, outcome
}
