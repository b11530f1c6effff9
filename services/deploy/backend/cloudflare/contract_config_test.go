package cloudflare_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// TestConfigContract validates the upload of a worker with vars, service
// bindings and crons in its Cloudflare form against the contract: vars as
// plain_text bindings, the service bindings as one dispatch_namespace
// binding to the worker's own namespace plus the generated wrapper as the
// main module, and no schedules request (Cloudflare has no cron triggers
// for namespace scripts). It also checks that the contract's binding
// schemas do refuse a malformed binding.
func TestConfigContract(t *testing.T) {
	mock := startSteady(t)
	target, _ := url.Parse(mock)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var checked []string
	var bodies [][]byte
	proxy.ModifyResponse = func(res *http.Response) error {
		if problem := verdict(res); problem != "" {
			t.Errorf("%s %s violates the contract: %s", res.Request.Method, res.Request.URL.Path, problem)
		}
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		checked = append(checked, r.Method+" "+r.URL.Path)
		bodies = append(bodies, body)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	b, err := cloudflare.New(cloudflare.Config{
		AccountID: "023e105f4ecef8ad9ca31a8372d0c353", APIToken: "contract-test-token", BaseURL: front.URL, Name: "cloudflare", MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := backend.Script{
		Name: "gateway", MainModule: "src/index.js",
		Modules:  []backend.Module{{Name: "src/index.js", Content: []byte("export default { fetch(r, env) { return env.DB.fetch(r) } }")}},
		Vars:     map[string]string{"GREETING": "hello", "A_FIRST": "1"},
		Services: []backend.ServiceBinding{{Binding: "DB", Service: "db"}, {Binding: "AUTH", Service: "auth"}},
		Crons:    []string{"*/5 * * * *"},
	}
	if err := b.Upload(ctx, "dotdo-production", s); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if len(checked) != 1 || !strings.HasPrefix(checked[0], "PUT ") {
		t.Fatalf("requests %q, want the upload alone", checked)
	}
	meta, files := parseUpload(t, bodies[0])
	for _, want := range []string{
		`"main_module":"` + cloudflare.WrapperModule + `"`,
		`{"name":"A_FIRST","text":"1","type":"plain_text"},{"name":"GREETING","text":"hello","type":"plain_text"}`,
		`{"name":"` + cloudflare.NamespaceBinding + `","namespace":"dotdo-production","type":"dispatch_namespace"}`,
	} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata %s lacks %s", meta, want)
		}
	}
	if strings.Contains(meta, `"service"`) {
		t.Errorf("metadata %s holds a service binding, which Cloudflare refuses between siblings (10143)", meta)
	}
	wrapper := files[cloudflare.WrapperModule]
	for _, want := range []string{`import worker from "./src/index.js"`, `["DB", "db"], ["AUTH", "auth"]`, "ns.get(service).fetch(r)", `const SCHEDULED = "x-dotdo-scheduled"`} {
		if !strings.Contains(wrapper, want) {
			t.Errorf("wrapper lacks %q:\n%s", want, wrapper)
		}
	}
	if _, ok := files["src/index.js"]; !ok {
		t.Errorf("the worker's own module was not uploaded: %v", files)
	}
	// A worker with crons and no service bindings gets the wrapper too:
	// the dispatch Worker runs its scheduled() through it.
	ticker := backend.Script{Name: "ticker", MainModule: "index.js", Crons: []string{"0 * * * *"},
		Modules: []backend.Module{{Name: "index.js", Content: []byte("export default { scheduled() {} }")}}}
	if err := b.Upload(ctx, "dotdo-production", ticker); err != nil {
		t.Fatalf("Upload of a cron-only worker: %v", err)
	}
	mu.Lock()
	tickerBody := bodies[len(bodies)-1]
	mu.Unlock()
	if meta, files := parseUpload(t, tickerBody); !strings.Contains(meta, `"main_module":"`+cloudflare.WrapperModule+`"`) || files["index.js"] == "" {
		t.Errorf("a cron-only worker's upload: %s, %d files", meta, len(files))
	}
	if err := b.Scheduled(ctx, "dotdo-production", "gateway", ""); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("Scheduled on Cloudflare = %v, want ErrUnsupported", err)
	}

	// The contract refuses a plain_text binding without its text.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="metadata"`}
	h["Content-Type"] = []string{"application/json"}
	p, _ := mw.CreatePart(h)
	_, _ = p.Write([]byte(`{"main_module":"a.js","bindings":[{"name":"X","type":"plain_text"}]}`))
	f, _ := mw.CreateFormFile("files", "a.js")
	_, _ = f.Write([]byte("export default {}"))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPut, mock+"/accounts/acct/workers/dispatch/namespaces/ns/scripts/s", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if verdict(res) == "" {
		t.Fatal("the contract accepted a plain_text binding without text")
	}
}

// parseUpload returns the metadata part and the files (by file name) of a
// multipart upload.
func parseUpload(t *testing.T, body []byte) (string, map[string]string) {
	t.Helper()
	i := bytes.Index(body, []byte("\r\n"))
	if i < 2 {
		t.Fatalf("not a multipart body: %.80q", body)
	}
	boundary := string(body[2:i])
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	files := map[string]string{}
	var meta string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if params["name"] == "metadata" {
			meta = string(b)
		} else {
			files[params["filename"]] = string(b)
		}
	}
	return meta, files
}
