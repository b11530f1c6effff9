package dispatcher_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/runtime"
)

// upstream is a fake runtime: it records the requests it gets and runs the
// test's handler.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return u.seen[len(u.seen)-1]
}

// link is a way for a dispatcher to reach the runtime.
type link struct {
	name string
	// to returns cfg set to reach up.
	to func(cfg dispatcher.Config, up *upstream) dispatcher.Config
}

// links are both ways: over HTTP (the dispatcher binary) and in process
// (dotdo dev). The runtime sees the same request either way.
var links = []link{
	{"http", func(cfg dispatcher.Config, up *upstream) dispatcher.Config { cfg.RuntimeURL = up.URL; return cfg }},
	{"in-process", func(cfg dispatcher.Config, up *upstream) dispatcher.Config {
		cfg.Runtime = handlerRuntime{up.Config.Handler}
		return cfg
	}},
}

// handlerRuntime is a LocalRuntime that hands each call to h as the request
// the runtime's invocation endpoint would get over HTTP, so that one
// upstream serves both links and sees the same request.
type handlerRuntime struct{ h http.Handler }

// inProcessToken marks, for the upstream, a request that came in process.
const inProcessToken = "(in process)"

func (hr handlerRuntime) Invoke(w http.ResponseWriter, r *http.Request, namespace, worker string, version int64, host, proto string) {
	prefix := dispatcher.InvokePrefix + namespace + "/" + worker + "/" + strconv.FormatInt(version, 10)
	r.URL = &url.URL{Path: prefix + r.URL.Path, RawPath: func() string {
		if r.URL.RawPath != "" {
			return prefix + r.URL.RawPath
		}
		return ""
	}(), RawQuery: r.URL.RawQuery}
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set(dispatcher.InvokeTokenHeader, inProcessToken) // no credential crosses an in-process call
	hr.h.ServeHTTP(w, r)
}

// eachLink runs f as a subtest for each link.
func eachLink(t *testing.T, f func(t *testing.T, l link)) {
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) { f(t, l) })
	}
}

// front serves d on loopback and returns its base URL.
func front(t *testing.T, d http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return srv.URL
}

// testClient sends requests as they are: no Accept-Encoding added.
var testClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// do sends a request for host to the dispatcher at base.
func do(t *testing.T, method, base, host, target string, body io.Reader, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, target, err)
	}
	return res
}

type errorJSON struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// wantError checks that res is the dispatcher's JSON error with status and
// code, and that its request id is in the header too.
func wantError(t *testing.T, res *http.Response, status int, code string) errorJSON {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e errorJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("status %d, body not JSON: %q", res.StatusCode, b)
	}
	if res.StatusCode != status || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("got %d %s; want %d %s", res.StatusCode, b, status, code)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if id := res.Header.Get(dispatcher.RequestIDHeader); id == "" || id != e.Error.RequestID {
		t.Errorf("X-Request-Id %q, body request_id %q", id, e.Error.RequestID)
	}
	return e
}

func TestInvokeTokenHeaderMatchesRuntime(t *testing.T) {
	if dispatcher.InvokeTokenHeader != runtime.InvokeTokenHeader || dispatcher.InvokePrefix != runtime.InvokePrefix {
		t.Fatal("the dispatcher's view of the invocation endpoint differs from the runtime's")
	}
}

func TestProxyForwardsHeadersAndBody(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			// An HTTP/1.1 echo must read and write at once: without full
			// duplex, net/http may close the request body once the response
			// starts.
			_ = http.NewResponseController(w).EnableFullDuplex()
			w.Header().Set("X-Upstream", "yes")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.Copy(w, r.Body)
		})
		d := newDispatcher(t, l.to(dispatcher.Config{InvokeToken: "the-token"}, up), newFake("production", standardLive()))
		base := front(t, d)

		body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		res := do(t, http.MethodPost, base, "api.do", "/api/db/users?b=2&a=1;x=%zz", bytes.NewReader(body), http.Header{
			"Authorization":        {"Bearer end-user"},
			"X-Custom":             {"kept"},
			"Connection":           {"X-Hop"},
			"X-Hop":                {"dropped"},
			"Keep-Alive":           {"timeout=5"},
			"Proxy-Connection":     {"keep-alive"},
			"Te":                   {"gzip"},
			"X-Forwarded-For":      {"6.6.6.6"},
			"X-Forwarded-Proto":    {"https"},
			"X-Forwarded-Host":     {"evil.example"},
			"Forwarded":            {"for=6.6.6.6"},
			"X-Dotdo-Invoke-Token": {"forged"},
			"X-Request-Id":         {"client-id-123"},
		})
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated || !bytes.Equal(got, body) {
			t.Fatalf("status %d, %d bytes echoed; want 201 and %d bytes", res.StatusCode, len(got), len(body))
		}
		if res.Header.Get("X-Upstream") != "yes" {
			t.Errorf("response headers: %v", res.Header)
		}
		if ids := res.Header.Values(dispatcher.RequestIDHeader); len(ids) != 1 || ids[0] != "client-id-123" {
			t.Errorf("response X-Request-Id %q; want the client's", ids)
		}

		r := up.last(t)
		checks := map[string][2]string{
			"path":              {r.URL.Path, "/invoke/dotdo-production/db/5/api/db/users"},
			"query":             {r.URL.RawQuery, "b=2&a=1;x=%zz"},
			"invoke token":      {r.Header.Get(dispatcher.InvokeTokenHeader), map[string]string{"http": "the-token", "in-process": inProcessToken}[l.name]},
			"X-Forwarded-For":   {strings.Join(r.Header.Values("X-Forwarded-For"), ","), "127.0.0.1"},
			"X-Forwarded-Host":  {r.Header.Get("X-Forwarded-Host"), "api.do"},
			"X-Forwarded-Proto": {r.Header.Get("X-Forwarded-Proto"), "http"},
			"Forwarded":         {r.Header.Get("Forwarded"), ""},
			"Authorization":     {r.Header.Get("Authorization"), "Bearer end-user"},
			"X-Custom":          {r.Header.Get("X-Custom"), "kept"},
			"X-Hop":             {r.Header.Get("X-Hop"), ""},
			"Keep-Alive":        {r.Header.Get("Keep-Alive"), ""},
			"Proxy-Connection":  {r.Header.Get("Proxy-Connection"), ""},
			"Te":                {r.Header.Get("Te"), ""},
			"X-Request-Id":      {r.Header.Get("X-Request-Id"), "client-id-123"},
			"Accept-Encoding":   {r.Header.Get("Accept-Encoding"), ""},
		}
		for what, c := range checks {
			if c[0] != c[1] {
				t.Errorf("upstream %s = %q; want %q", what, c[0], c[1])
			}
		}
		if r.Method != http.MethodPost || r.ContentLength != int64(len(body)) {
			t.Errorf("upstream method %s, content length %d", r.Method, r.ContentLength)
		}
	})
}

// TestProxyRemovesResponseHopHeaders answers from a raw upstream, whose
// headers net/http cannot tidy up, and checks what reaches the client.
func TestProxyRemovesResponseHopHeaders(t *testing.T) {
	ln := testsupport.Listen(t)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: secret\r\n"+
					"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Upstream: yes\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: "http://" + ln.Addr().String()}, newFake("production", standardLive()))
	res := do(t, http.MethodGet, front(t, d), "gateway.do", "/", nil, nil)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(b) != "ok" || res.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("status %d body %q headers %v", res.StatusCode, b, res.Header)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := res.Header.Get(h); v != "" {
			t.Errorf("hop-by-hop response header %s: %q reached the client", h, v)
		}
	}
}

func TestProxyPathsAndRequestIDs(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Request-Id", "from-worker") })
		cfg, prefix := l.to(dispatcher.Config{}, up), ""
		if cfg.Runtime == nil {
			cfg.RuntimeURL, prefix = up.URL+"/prefix/", "/prefix"
		}
		d := newDispatcher(t, cfg, newFake("production", standardLive()))
		base := front(t, d)
		for _, c := range []struct{ host, target, wantRaw string }{
			{"gateway.do", "/", "/invoke/dotdo-production/gateway/3/"},
			{"api.do", "/api/%64b/x", "/invoke/dotdo-production/gateway/3/api/%64b/x"},
			{"api.do", "/api/db/a%2Fb?q=1", "/invoke/dotdo-production/db/5/api/db/a%2Fb"},
			{"db.do", "/api//db", "/invoke/dotdo-production/db/5/api//db"},
			{"GATEWAY.DO.:8787", "/x", "/invoke/dotdo-production/gateway/3/x"},
		} {
			res := do(t, http.MethodGet, base, c.host, c.target, nil, http.Header{"X-Request-Id": {"bad id with spaces"}})
			res.Body.Close()
			r := up.last(t)
			if want := prefix + c.wantRaw; res.StatusCode != http.StatusOK || r.URL.EscapedPath() != want {
				t.Errorf("%s%s: status %d, upstream path %q; want %q", c.host, c.target, res.StatusCode, r.URL.EscapedPath(), prefix+c.wantRaw)
			}
			if got := r.Header.Get("X-Forwarded-Host"); got != c.host {
				t.Errorf("%s%s: X-Forwarded-Host %q", c.host, c.target, got)
			}
			id := r.Header.Get(dispatcher.RequestIDHeader)
			if id == "" || id == "bad id with spaces" || res.Header.Get(dispatcher.RequestIDHeader) != id {
				t.Errorf("%s%s: request id upstream %q, response %q", c.host, c.target, id, res.Header.Values(dispatcher.RequestIDHeader))
			}
		}
	})
}

func TestProxyTrustForwardedHeaders(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, func(http.ResponseWriter, *http.Request) {})
		d := newDispatcher(t, l.to(dispatcher.Config{TrustForwardedHeaders: true}, up), newFake("production", standardLive()))
		res := do(t, http.MethodGet, front(t, d), "gateway.do", "/", nil, http.Header{
			"X-Forwarded-For": {"6.6.6.6, 10.0.0.1"}, "X-Forwarded-Proto": {"HTTPS"},
		})
		res.Body.Close()
		r := up.last(t)
		if got := r.Header.Get("X-Forwarded-For"); got != "6.6.6.6, 10.0.0.1, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		if got := r.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
	})
}

// TestProxyStreamsResponse shows that a response streamed in chunks reaches
// the client while the upstream is still writing it.
func TestProxyStreamsResponse(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		release := make(chan struct{})
		finished := make(chan struct{})
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			defer close(finished)
			_, _ = io.WriteString(w, "first chunk\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			_, _ = io.WriteString(w, "second chunk\n")
		})
		d := newDispatcher(t, l.to(dispatcher.Config{}, up), newFake("production", standardLive()))
		res := do(t, http.MethodGet, front(t, d), "gateway.do", "/stream", nil, nil)
		defer res.Body.Close()
		br := bufio.NewReader(res.Body)
		line, err := readLineWithin(br, 5*time.Second)
		if err != nil || line != "first chunk\n" {
			t.Fatalf("first chunk: %q, %v", line, err)
		}
		select {
		case <-finished:
			t.Fatal("the upstream finished before the client read the first chunk")
		default:
		}
		close(release)
		if rest, _ := io.ReadAll(br); string(rest) != "second chunk\n" {
			t.Fatalf("rest %q", rest)
		}
	})
}

func readLineWithin(br *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	c := make(chan result, 1)
	go func() { s, err := br.ReadString('\n'); c <- result{s, err} }()
	select {
	case r := <-c:
		return r.s, r.err
	case <-time.After(d):
		return "", context.DeadlineExceeded
	}
}

// TestProxyStreamsRequestBody shows that the upstream reads the start of a
// request body before the client has sent the rest.
func TestProxyStreamsRequestBody(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		gotFirst := make(chan string, 1)
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, len("part one;"))
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				gotFirst <- "error: " + err.Error()
				return
			}
			gotFirst <- string(buf)
			rest, _ := io.ReadAll(r.Body)
			_, _ = w.Write(rest)
		})
		d := newDispatcher(t, l.to(dispatcher.Config{}, up), newFake("production", standardLive()))
		base := front(t, d)
		pr, pw := io.Pipe()
		done := make(chan *http.Response, 1)
		go func() { done <- do(t, http.MethodPost, base, "gateway.do", "/upload", pr, nil) }()
		_, _ = io.WriteString(pw, "part one;")
		select {
		case s := <-gotFirst:
			if s != "part one;" {
				t.Fatalf("upstream read %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream did not get the first part before the body was complete")
		}
		_, _ = io.WriteString(pw, "part two")
		pw.Close()
		res := <-done
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "part two" {
			t.Fatalf("echo %q", b)
		}
	})
}

// TestProxyClientDisconnectCancelsUpstream shows that a client that goes
// away cancels the request to the runtime.
func TestProxyClientDisconnectCancelsUpstream(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		started := make(chan struct{})
		canceled := make(chan struct{})
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				close(canceled)
			case <-time.After(10 * time.Second):
			}
		})
		d := newDispatcher(t, l.to(dispatcher.Config{}, up), newFake("production", standardLive()))
		base := front(t, d)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/slow", nil)
		req.Host = "gateway.do"
		errc := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			errc <- err
		}()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the request never reached the upstream")
		}
		cancel()
		select {
		case <-canceled:
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream request was not canceled when the client went away")
		}
		if err := <-errc; err == nil {
			t.Fatal("the canceled client got a response")
		}
	})
}

func TestProxyRuntimeUnreachable(t *testing.T) {
	addr := testsupport.FreeAddr(t) // nothing listens there
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: "http://" + addr}, newFake("production", standardLive()))
	wantError(t, do(t, http.MethodGet, front(t, d), "gateway.do", "/", nil, nil), http.StatusBadGateway, "runtime_unreachable")
}

func TestProxyRuntimeTimeout(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		stop := make(chan struct{})
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/upload") {
				n, err := io.Copy(io.Discard, r.Body)
				fmt.Fprintf(w, "%d %v", n, err)
				return
			}
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		})
		defer close(stop)
		d := newDispatcher(t, l.to(dispatcher.Config{UpstreamTimeout: 100 * time.Millisecond}, up), newFake("production", standardLive()))
		start := time.Now()
		e := wantError(t, do(t, http.MethodGet, front(t, d), "gateway.do", "/", nil, nil), http.StatusGatewayTimeout, "runtime_timeout")
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("504 after %v", el)
		}
		if !strings.Contains(e.Error.Message, "100ms") {
			t.Errorf("message %q", e.Error.Message)
		}
		// The wait starts once the runtime has the whole request: an
		// upload that takes longer than UpstreamTimeout is not cut.
		res := do(t, http.MethodPost, front(t, d), "gateway.do", "/upload", slowBody(5, 60*time.Millisecond), nil)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || string(b) != "50 <nil>" {
			t.Errorf("slow upload: %d %q; want 200 and the whole body read", res.StatusCode, b)
		}
	})
}

// slowBody is a request body of n 10-byte parts, one every gap.
func slowBody(n int, gap time.Duration) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for range n {
			if _, err := io.WriteString(pw, "0123456789"); err != nil {
				return
			}
			time.Sleep(gap)
		}
		pw.Close()
	}()
	return pr
}

func TestProxyRuntimeBreaksConnection(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: up.URL}, newFake("production", standardLive()))
	wantError(t, do(t, http.MethodGet, front(t, d), "gateway.do", "/", nil, nil), http.StatusBadGateway, "runtime_error")
}

func TestProxyRefusals(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, func(http.ResponseWriter, *http.Request) {})
		d := newDispatcher(t, l.to(dispatcher.Config{}, up), newFake("production", standardLive()))
		base := front(t, d)
		for _, c := range []struct {
			host, target string
			status       int
			code         string
		}{
			{"unknown.do", "/", http.StatusNotFound, "not_found"},
			{"example.com", "/", http.StatusNotFound, "not_found"},
			{"127.0.0.1", "/", http.StatusNotFound, "not_found"},
			{"schedule.do", "/", http.StatusNotFound, "no_live_version"},
			{"api.do", "/api/schedule/x", http.StatusNotFound, "no_live_version"},
			{"gateway..do", "/", http.StatusBadRequest, "bad_host"},
			{"gateway.do:x", "/", http.StatusBadRequest, "bad_host"},
			{"api.do", "/api/db/../auth", http.StatusBadRequest, "bad_request"},
		} {
			e := wantError(t, do(t, http.MethodGet, base, c.host, c.target, nil, nil), c.status, c.code)
			if c.code == "no_live_version" && !strings.Contains(e.Error.Message, "schedule") {
				t.Errorf("%s%s: message %q does not name the worker", c.host, c.target, e.Error.Message)
			}
		}
		up.mu.Lock()
		n := len(up.seen)
		up.mu.Unlock()
		if n != 0 {
			t.Errorf("refused requests reached the upstream %d times", n)
		}

		// Before the first snapshot (the source fails here): 503 not_ready.
		down := newFake("production", nil)
		down.fail(errors.New("db unreachable"))
		notReady, err := dispatcher.New(l.to(dispatcher.Config{InvokeToken: "t", Logger: testsupport.QuietLogger()}, up), down)
		if err != nil {
			t.Fatal(err)
		}
		res := do(t, http.MethodGet, front(t, notReady), "gateway.do", "/", nil, nil)
		if res.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		wantError(t, res, http.StatusServiceUnavailable, "not_ready")
	})
}

// echoUpgrade is an upstream that upgrades the connection and echoes each
// line sent on it, prefixed with "echo: ", until the client closes it.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "websocket" {
		http.Error(w, "want an upgrade", http.StatusBadRequest)
		return
	}
	w.Header().Set("Connection", "Upgrade")
	w.Header().Set("Upgrade", "websocket")
	w.WriteHeader(http.StatusSwitchingProtocols)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}
}

// dialUpgrade asks the dispatcher at base for an upgraded connection to
// gateway.do, and checks the 101 answer.
func dialUpgrade(t *testing.T, base string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: gateway.do\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get(dispatcher.RequestIDHeader) == "" {
		t.Fatalf("upgrade answer: %v, %v", res, err)
	}
	return conn, br
}

// TestProxyUpgrade shows that a protocol upgrade (WebSocket) passes through:
// after the 101, bytes flow both ways.
func TestProxyUpgrade(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, echoUpgrade)
		d := newDispatcher(t, l.to(dispatcher.Config{}, up), newFake("production", standardLive()))
		conn, br := dialUpgrade(t, front(t, d))
		_, _ = io.WriteString(conn, "ping\n")
		if line, err := br.ReadString('\n'); err != nil || line != "echo: ping\n" {
			t.Fatalf("after the upgrade: %q, %v", line, err)
		}
	})
}

// frontWithTimeouts serves d on loopback, over HTTP/1.1 and h2c, behind
// an http.Server whose read and write timeouts are timeout, and returns its
// base URL.
func frontWithTimeouts(t *testing.T, d http.Handler, timeout time.Duration) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(d)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// clientFor returns a client that speaks HTTP/1.1, or h2c when h2 is set.
func clientFor(h2 bool) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if h2 {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

// streamUpstream answers /download with 16 chunks, one every tick; /quiet
// with a chunk, a silence of quiet, and a last chunk; /readclose the same
// after reading and closing the body; /upload with how many
// bytes of the body it read and the error that ended the read; /slowread
// the same after pausing for quiet after the first 10 bytes; and /ws with
// an upgraded echo (echoUpgrade).
func streamUpstream(tick, quiet time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path[strings.LastIndex(r.URL.Path, "/"):] {
		case "/download":
			for i := range 16 {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(tick)
			}
		case "/quiet":
			fmt.Fprint(w, "before\n")
			w.(http.Flusher).Flush()
			time.Sleep(quiet)
			fmt.Fprint(w, "after\n")
		case "/readclose":
			n, err := io.Copy(io.Discard, r.Body)
			r.Body.Close()
			fmt.Fprintf(w, "%d %v\n", n, err)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(quiet):
				fmt.Fprint(w, "after\n")
			case <-r.Context().Done():
				fmt.Fprint(w, "canceled\n")
			}
		case "/upload", "/slowread":
			var first [10]byte
			n, err := io.ReadFull(r.Body, first[:])
			if strings.HasSuffix(r.URL.Path, "/slowread") {
				time.Sleep(quiet)
			}
			if err == nil {
				var m int64
				m, err = io.Copy(io.Discard, r.Body)
				n += int(m)
			}
			fmt.Fprintf(w, "%d %v", n, err)
		case "/ws":
			echoUpgrade(w, r)
		}
	}
}

// TestProxyLongStreams shows that streams outlive the server's read and
// write timeouts while they make progress, over HTTP/1.1 and h2c: a
// response streamed for longer than the write timeout, one silent for
// longer than StreamTimeout (also after the body was read and closed), an
// upload sent for longer than the read
// timeout, an upload the worker pauses reading, and an upgraded connection
// idle for longer than all of them. A client whose upload stalls for
// StreamTimeout gets 408.
func TestProxyLongStreams(t *testing.T) {
	const (
		serverTimeout = 150 * time.Millisecond
		streamTimeout = 100 * time.Millisecond
		tick          = 25 * time.Millisecond // 16 ticks: longer than the server's timeouts
		quiet         = 2 * serverTimeout     // longer than every timeout
	)
	eachLink(t, func(t *testing.T, l link) {
		up := newUpstream(t, streamUpstream(tick, quiet))
		d := newDispatcher(t, l.to(dispatcher.Config{StreamTimeout: streamTimeout}, up), newFake("production", standardLive()))
		base := frontWithTimeouts(t, d, serverTimeout)
		for _, h2 := range []bool{false, true} {
			client := clientFor(h2)
			send := func(method, path string, body io.Reader) (*http.Response, string, error) {
				t.Helper()
				req, _ := http.NewRequest(method, base+path, body)
				req.Host = "gateway.do"
				res, err := client.Do(req)
				if err != nil {
					t.Fatalf("h2c=%v %s: %v", h2, path, err)
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if wantMajor := map[bool]int{false: 1, true: 2}[h2]; res.ProtoMajor != wantMajor {
					t.Errorf("h2c=%v %s: answered over %s", h2, path, res.Proto)
				}
				return res, string(b), err
			}
			if _, b, err := send(http.MethodGet, "/download", nil); err != nil || !strings.HasSuffix(b, "chunk 15\n") {
				t.Errorf("h2c=%v download: %d bytes, %v; want all 16 chunks", h2, len(b), err)
			}
			if _, b, err := send(http.MethodGet, "/quiet", nil); err != nil || b != "before\nafter\n" {
				t.Errorf("h2c=%v quiet download: %q, %v; want it whole", h2, b, err)
			}
			if _, b, err := send(http.MethodPost, "/readclose", strings.NewReader("hello")); err != nil || b != "5 <nil>\nafter\n" {
				t.Errorf("h2c=%v quiet answer after the body was read and closed: %q, %v; want it whole", h2, b, err)
			}
			if _, b, _ := send(http.MethodPost, "/upload", slowBody(16, tick)); b != "160 <nil>" {
				t.Errorf("h2c=%v upload: the upstream read %q; want all 160 bytes", h2, b)
			}
			if _, b, _ := send(http.MethodPost, "/slowread", strings.NewReader(strings.Repeat("x", 1<<20))); b != fmt.Sprintf("%d <nil>", 1<<20) {
				t.Errorf("h2c=%v upload read slowly: the upstream read %q; want all of it", h2, b)
			}
			// A stalled upload is cut after StreamTimeout with a 408.
			pr, pw := io.Pipe()
			go func() { _, _ = io.WriteString(pw, "start") }()
			res, b, _ := send(http.MethodPost, "/upload", pr)
			pw.Close()
			if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(b, `"request_timeout"`) {
				t.Errorf("h2c=%v stalled upload: %d %q; want 408 request_timeout", h2, res.StatusCode, b)
			}
			if h2 { // the 408 ends that stream only, not the connection's others
				reused := false
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, base+"/quiet", nil)
				req.Host = "gateway.do"
				if res, err := client.Do(req); err != nil || !reused {
					t.Errorf("h2c: the request after a 408: %v, connection reused %v; want it reused", err, reused)
				} else {
					res.Body.Close()
				}
			}
		}

		conn, br := dialUpgrade(t, base)
		for _, msg := range []string{"one\n", "two\n"} {
			time.Sleep(quiet)
			_, _ = io.WriteString(conn, msg)
			if line, err := br.ReadString('\n'); err != nil || line != "echo: "+msg {
				t.Fatalf("upgraded connection after %v idle: %q, %v", quiet, line, err)
			}
		}
	})
}

// TestProxyStalledClientLetGo: a client that stops sending a body the
// worker has not read is let go once it has its answer, rather than
// holding its connection and a goroutine: whether the worker ignored the
// body or something (the transport to workerd, or to the runtime) was still
// reading it when the answer came.
func TestProxyStalledClientLetGo(t *testing.T) {
	eachLink(t, func(t *testing.T, l link) {
		for _, reading := range []bool{false, true} {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if reading {
					if l.name == "http" {
						// Answer while the dispatcher's transport still sends the body.
						_ = http.NewResponseController(w).EnableFullDuplex()
					} else {
						go func() { _, _ = io.Copy(io.Discard, r.Body) }() // as the runtime's transport would
						time.Sleep(20 * time.Millisecond)
					}
				}
				_, _ = io.WriteString(w, "answered")
			})
			d := newDispatcher(t, l.to(dispatcher.Config{StreamTimeout: 200 * time.Millisecond}, up), newFake("production", standardLive()))
			srv := httptest.NewUnstartedServer(d)
			srv.Config.ReadHeaderTimeout = 500 * time.Millisecond
			srv.Start()
			t.Cleanup(srv.Close)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: gateway.do\r\nContent-Length: 100000\r\n\r\nonly this much")
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading=%v: %v", reading, err)
			}
			b, _ := io.ReadAll(res.Body)
			// Whether the worker's answer or the stall comes first depends on
			// the link: over HTTP, the runtime's connection still wants the body.
			workerAnswered := res.StatusCode == http.StatusOK && string(b) == "answered"
			if !workerAnswered && res.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("reading=%v: answer %d %q; want the worker's, or 408", reading, res.StatusCode, b)
			}
			start := time.Now()
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("reading=%v: after the answer: %v; want the connection closed", reading, err)
			}
			t.Logf("reading=%v: answered %d; connection closed %v later", reading, res.StatusCode, time.Since(start).Round(time.Millisecond))
		}
	})
}
