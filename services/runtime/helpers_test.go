package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

const (
	apiToken    = "test-api-token-0123456789"
	invokeToken = "test-invoke-token-9876543210"
	account     = "local"
)

// requireWorkerd skips the test when no workerd binary can be found.
func requireWorkerd(t testing.TB) {
	t.Helper()
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping: this test runs workerd, and none was found: %v", err)
	}
}

// testLog writes slog output to t.Log until the test ends.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	done atomic.Bool
}

func (l *testLog) Write(p []byte) (int, error) {
	if l.done.Load() {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	l := &testLog{t: t}
	t.Cleanup(func() { l.done.Store(true) })
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level}))
}

type env struct {
	t   testing.TB
	rt  *runtime.Runtime
	srv *httptest.Server
	dir string
}

// start runs a runtime on dir behind an httptest server (loopback).
func start(t testing.TB, dir string, mod func(*runtime.Config)) *env {
	t.Helper()
	requireWorkerd(t)
	cfg := runtime.Config{
		DataDir:             dir,
		APIToken:            apiToken,
		InvokeToken:         invokeToken,
		StartupCheckTimeout: 2 * time.Second,
		Logger:              testLogger(t, slog.LevelWarn),
	}
	if mod != nil {
		mod(&cfg)
	}
	rt, err := runtime.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("runtime.New: %v", err)
	}
	srv := httptest.NewServer(rt.Handler())
	e := &env{t: t, rt: rt, srv: srv, dir: dir}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.srv.Close()
	if err := e.rt.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
}

func (e *env) apiURL(path string) string {
	return e.srv.URL + "/client/v4/accounts/" + account + "/workers/dispatch/namespaces" + path
}

// api sends a JSON (or nil) body to the API and decodes the envelope.
func (e *env) api(method, path string, body any) (int, envelope) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.apiURL(path), rd)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return doEnvelope(e.t, req)
}

type envelope struct {
	Success  bool              `json:"success"`
	Errors   []envelopeMessage `json:"errors"`
	Messages []envelopeMessage `json:"messages"`
	Result   json.RawMessage   `json:"result"`
}

type envelopeMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func doEnvelope(t testing.TB, req *http.Request) (int, envelope) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: status %d, body not an envelope: %q", req.Method, req.URL.Path, res.StatusCode, b)
	}
	return res.StatusCode, env
}

type file struct {
	name, contentType, content string
}

func esm(name, content string) file {
	return file{name, "application/javascript+module", content}
}

// multipartBody encodes an upload the way cloudflare-go does: a metadata
// part and one "files" part per module.
func multipartBody(meta any, files ...file) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if meta != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="metadata"`)
		h.Set("Content-Type", "application/json")
		w, _ := mw.CreatePart(h)
		switch m := meta.(type) {
		case string:
			_, _ = w.Write([]byte(m))
		default:
			b, _ := json.Marshal(m)
			_, _ = w.Write(b)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files"; filename=%q`, f.name))
		h.Set("Content-Type", f.contentType)
		w, _ := mw.CreatePart(h)
		_, _ = w.Write([]byte(f.content))
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload PUTs a script and returns the status and envelope.
func (e *env) upload(ns, script string, meta any, files ...file) (int, envelope) {
	e.t.Helper()
	body, ct := multipartBody(meta, files...)
	req, _ := http.NewRequest(http.MethodPut, e.apiURL("/"+ns+"/scripts/"+script), body)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", ct)
	return doEnvelope(e.t, req)
}

// mustUpload uploads a single-module worker and returns its version.
func (e *env) mustUpload(ns, script, code string, meta map[string]any) int64 {
	e.t.Helper()
	m := map[string]any{"main_module": "worker.js", "compatibility_date": "2025-01-01"}
	for k, v := range meta {
		m[k] = v
	}
	status, env := e.upload(ns, script, m, esm("worker.js", code))
	if status != http.StatusOK || !env.Success {
		e.t.Fatalf("upload %s/%s: status %d, errors %+v", ns, script, status, env.Errors)
	}
	var res struct {
		DotdoVersion int64 `json:"dotdo_version"`
	}
	_ = json.Unmarshal(env.Result, &res)
	if res.DotdoVersion <= 0 {
		e.t.Fatalf("upload %s/%s: no dotdo_version in %s", ns, script, env.Result)
	}
	return res.DotdoVersion
}

func (e *env) mustCreateNamespace(ns string) {
	e.t.Helper()
	status, env := e.api(http.MethodPost, "", map[string]string{"name": ns})
	if status != http.StatusOK {
		e.t.Fatalf("create namespace %s: status %d, errors %+v", ns, status, env.Errors)
	}
}

func (e *env) invokeURL(ns, script string, version int64, path string) string {
	return e.srv.URL + "/invoke/" + ns + "/" + script + "/" + strconv.FormatInt(version, 10) + path
}

// invoke GETs a worker through the invocation endpoint.
func (e *env) invoke(ns, script string, version int64, path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.invokeURL(ns, script, version, path), nil)
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("invoke %s/%s@%d: %v", ns, script, version, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pid returns the process serving ns/script (0 when none does).
func (e *env) pid(ns, script string) int {
	for _, p := range e.rt.Processes() {
		if p.Key.Namespace == ns && p.Key.Script == script && p.Serving {
			return p.PID
		}
	}
	return 0
}

func processAlive(pid int) bool {
	if pid == 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	// A zombie still answers kill(0): look at its state.
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

func itoa(i int) string { return strconv.Itoa(i) }
