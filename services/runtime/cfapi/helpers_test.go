package cfapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime/cfapi"
	"github.com/dot-do/platform/services/runtime/scripts"
)

const token = "cfapi-test-token-abcdef"

type fakeChecker struct {
	err   error
	calls int
}

func (f *fakeChecker) CheckStartup(ctx context.Context, ns, script string, d *scripts.Draft, secrets map[string]string) (time.Duration, error) {
	f.calls++
	return 3 * time.Millisecond, f.err
}

type harness struct {
	t       *testing.T
	dir     string
	store   *scripts.Store
	checker *fakeChecker
	srv     *httptest.Server
}

func newHarness(t *testing.T, maxBytes int64) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := scripts.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := &harness{t: t, dir: dir, store: st, checker: &fakeChecker{}}
	api, err := cfapi.New(cfapi.Config{AccountID: "local", APIToken: token, MaxScriptBytes: maxBytes, Store: st, Checker: h.checker})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(api)
	t.Cleanup(h.srv.Close)
	return h
}

type envelope struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Messages []any           `json:"messages"`
	Result   json.RawMessage `json:"result"`
}

type response struct {
	status int
	header http.Header
	raw    string
	env    envelope
}

func (h *harness) do(method, path, auth, contentType string, body io.Reader) response {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, body)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.env); err != nil {
			h.t.Fatalf("%s %s: bad envelope %q", method, path, b)
		}
		if r.env.Messages == nil || (!r.env.Success && len(r.env.Errors) == 0) {
			h.t.Fatalf("%s %s: incomplete envelope %q", method, path, b)
		}
	}
	return r
}

const base = "/client/v4/accounts/local/workers/dispatch/namespaces"

func (h *harness) api(method, path string, body any) response {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	return h.do(method, base+path, "Bearer "+token, "application/json", rd)
}

type part struct {
	form, filename, contentType, content string
}

func multipartBody(parts ...part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		hd := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.form)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		hd.Set("Content-Disposition", cd)
		if p.contentType != "" {
			hd.Set("Content-Type", p.contentType)
		}
		w, _ := mw.CreatePart(hd)
		_, _ = w.Write([]byte(p.content))
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func meta(v any) part {
	b, _ := json.Marshal(v)
	return part{form: "metadata", contentType: "application/json", content: string(b)}
}

func module(name, ct, content string) part {
	return part{form: "files", filename: name, contentType: ct, content: content}
}

const okJS = `export default { fetch() { return new Response("ok") } }`

func (h *harness) upload(ns, script string, parts ...part) response {
	h.t.Helper()
	body, ct := multipartBody(parts...)
	return h.do(http.MethodPut, base+"/"+ns+"/scripts/"+script, "Bearer "+token, ct, body)
}

func (h *harness) mustUpload(ns, script string, m map[string]any, parts ...part) int64 {
	h.t.Helper()
	if m == nil {
		m = map[string]any{}
	}
	if _, ok := m["main_module"]; !ok {
		m["main_module"] = "worker.js"
	}
	if len(parts) == 0 {
		parts = []part{module("worker.js", "application/javascript+module", okJS)}
	}
	r := h.upload(ns, script, append([]part{meta(m)}, parts...)...)
	if r.status != 200 {
		h.t.Fatalf("upload %s/%s: %d %s", ns, script, r.status, r.raw)
	}
	var res struct {
		DotdoVersion int64 `json:"dotdo_version"`
	}
	_ = json.Unmarshal(r.env.Result, &res)
	if r.header.Get("X-Dotdo-Script-Version") != fmt.Sprint(res.DotdoVersion) {
		h.t.Fatalf("version header %q, result %d", r.header.Get("X-Dotdo-Script-Version"), res.DotdoVersion)
	}
	return res.DotdoVersion
}

func wantError(t *testing.T, what string, r response, status, code int) {
	t.Helper()
	if r.status != status || r.env.Success || len(r.env.Errors) != 1 || r.env.Errors[0].Code != code {
		t.Errorf("%s: got %d %s; want %d code %d", what, r.status, r.raw, status, code)
	}
}

// snapshot lists every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %d %d", rel, info.Size(), info.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
