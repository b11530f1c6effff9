package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/option"
	wfp "github.com/cloudflare/cloudflare-go/v6/workers_for_platforms"
)

// TestCloudflareGo drives the API with cloudflare-go v6, unchanged, and runs
// the uploaded worker through the invocation endpoint.
func TestCloudflareGo(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	ctx := context.Background()
	client := cloudflare.NewClient(
		option.WithBaseURL(e.srv.URL+"/client/v4/"),
		option.WithAPIToken(apiToken),
		option.WithMaxRetries(0),
	)
	ns := client.WorkersForPlatforms.Dispatch.Namespaces
	acct := cloudflare.F(account)

	created, err := ns.New(ctx, wfp.DispatchNamespaceNewParams{AccountID: acct, Name: cloudflare.F("customers")})
	if err != nil {
		t.Fatalf("namespace New: %v", err)
	}
	if created.NamespaceName != "customers" || created.NamespaceID == "" || created.CreatedOn.IsZero() {
		t.Fatalf("namespace New: %+v", created)
	}
	got, err := ns.Get(ctx, "customers", wfp.DispatchNamespaceGetParams{AccountID: acct})
	if err != nil || got.NamespaceID != created.NamespaceID {
		t.Fatalf("namespace Get: %+v, %v", got, err)
	}
	list, err := ns.List(ctx, wfp.DispatchNamespaceListParams{AccountID: acct})
	if err != nil || len(list.Result) != 1 || list.Result[0].NamespaceName != "customers" {
		t.Fatalf("namespace List: %+v, %v", list, err)
	}

	code := `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return new Response(env.GREETING + ", " + (url.searchParams.get("name") || "nobody") + "!", {
      headers: { "content-type": "text/plain" },
    });
  },
};`
	up, err := ns.Scripts.Update(ctx, "customers", "hello", wfp.DispatchNamespaceScriptUpdateParams{
		AccountID: acct,
		Metadata: cloudflare.F(wfp.DispatchNamespaceScriptUpdateParamsMetadata{
			MainModule:        cloudflare.F("worker.js"),
			CompatibilityDate: cloudflare.F("2025-01-01"),
			Bindings: cloudflare.F([]wfp.DispatchNamespaceScriptUpdateParamsMetadataBindingUnion{
				wfp.DispatchNamespaceScriptUpdateParamsMetadataBindingsWorkersBindingKindPlainText{
					Name: cloudflare.F("GREETING"),
					Text: cloudflare.F("Hello"),
					Type: cloudflare.F(wfp.DispatchNamespaceScriptUpdateParamsMetadataBindingsWorkersBindingKindPlainTextTypePlainText),
				},
			}),
			Tags: cloudflare.F([]string{"free"}),
		}),
		Files: cloudflare.F([]io.Reader{
			cloudflare.FileParam(strings.NewReader(code), "worker.js", "application/javascript+module").Value,
		}),
	})
	if err != nil {
		t.Fatalf("script Update: %v", err)
	}
	if up.ID != "hello" || up.Etag == "" || !slices.Equal(up.Tags, []string{"free"}) || up.CompatibilityDate != "2025-01-01" {
		t.Fatalf("script Update result: %+v", up)
	}
	var version int64
	if err := json.Unmarshal([]byte(up.JSON.ExtraFields["dotdo_version"].Raw()), &version); err != nil || version != 1 {
		t.Fatalf("dotdo_version: %q (%v)", up.JSON.ExtraFields["dotdo_version"].Raw(), err)
	}

	// Read it back.
	sc, err := ns.Scripts.Get(ctx, "customers", "hello", wfp.DispatchNamespaceScriptGetParams{AccountID: acct})
	if err != nil {
		t.Fatalf("script Get: %v", err)
	}
	if sc.DispatchNamespace != "customers" || sc.Script.ID != "hello" || sc.Script.Etag != up.Etag {
		t.Fatalf("script Get: %+v", sc)
	}
	res, err := ns.Scripts.Content.Get(ctx, "customers", "hello", wfp.DispatchNamespaceScriptContentGetParams{AccountID: acct})
	if err != nil {
		t.Fatalf("content Get: %v", err)
	}
	modules := readMultipart(t, res)
	if modules["worker.js"] != code || res.Header.Get("CF-WORKER-MAIN-MODULE-PART") != "worker.js" {
		t.Fatalf("content Get: %q", modules)
	}
	settings, err := ns.Scripts.Settings.Get(ctx, "customers", "hello", wfp.DispatchNamespaceScriptSettingGetParams{AccountID: acct})
	if err != nil {
		t.Fatalf("settings Get: %v", err)
	}
	if len(settings.Bindings) != 1 || settings.Bindings[0].Name != "GREETING" || settings.CompatibilityDate != "2025-01-01" {
		t.Fatalf("settings Get: %+v", settings)
	}

	// The worker computes its answer from the binding.
	status, body := e.invoke("customers", "hello", version, "/greet?name=Ada")
	if status != http.StatusOK || body != "Hello, Ada!" {
		t.Fatalf("invoke: %d %q", status, body)
	}

	// Tags: replace, list by tag, read.
	tags, err := ns.Scripts.Tags.Update(ctx, "customers", "hello", wfp.DispatchNamespaceScriptTagUpdateParams{AccountID: acct, Body: []string{"paid", "customer-42"}})
	if err != nil || !slices.Equal(tags.Result, []string{"paid", "customer-42"}) {
		t.Fatalf("tags Update: %+v, %v", tags, err)
	}
	e.mustUpload("customers", "other", `export default { fetch() { return new Response("other") } }`, map[string]any{"tags": []string{"free"}})
	for _, c := range []struct {
		filter string
		want   []string
	}{
		{"paid:yes", []string{"hello"}},
		{"free:yes", []string{"other"}},
		{"paid:no", []string{"other"}},
		{"customer-42", []string{"hello"}},
		{"", []string{"hello", "other"}},
	} {
		if got := e.listScripts("customers", c.filter); !slices.Equal(got, c.want) {
			t.Errorf("list scripts ?tags=%s: %v, want %v", c.filter, got, c.want)
		}
	}
	tagList, err := ns.Scripts.Tags.List(ctx, "customers", "hello", wfp.DispatchNamespaceScriptTagListParams{AccountID: acct})
	if err != nil || !slices.Equal(tagList.Result, []string{"paid", "customer-42"}) {
		t.Fatalf("tags List: %+v, %v", tagList, err)
	}
	if _, err := ns.Scripts.Tags.Delete(ctx, "customers", "hello", "paid", wfp.DispatchNamespaceScriptTagDeleteParams{AccountID: acct}); err != nil {
		t.Fatalf("tags Delete: %v", err)
	}
	if got := e.listScripts("customers", "paid:yes"); len(got) != 0 {
		t.Fatalf("after tag delete, paid:yes lists %v", got)
	}

	// Secrets.
	if _, err := ns.Scripts.Secrets.Update(ctx, "customers", "hello", wfp.DispatchNamespaceScriptSecretUpdateParams{
		AccountID: acct,
		Body: wfp.DispatchNamespaceScriptSecretUpdateParamsBodyWorkersBindingKindSecretText{
			Name: cloudflare.F("GREETING"),
			Text: cloudflare.F("Howdy"),
			Type: cloudflare.F(wfp.DispatchNamespaceScriptSecretUpdateParamsBodyWorkersBindingKindSecretTextTypeSecretText),
		},
	}); err != nil {
		t.Fatalf("secrets Update: %v", err)
	}
	secrets, err := ns.Scripts.Secrets.List(ctx, "customers", "hello", wfp.DispatchNamespaceScriptSecretListParams{AccountID: acct})
	if err != nil || len(secrets.Result) != 1 || secrets.Result[0].Name != "GREETING" || strings.Contains(secrets.JSON.RawJSON(), "Howdy") {
		t.Fatalf("secrets List: %+v, %v", secrets, err)
	}
	if status, body := e.invoke("customers", "hello", version, "/?name=Bo"); status != 200 || body != "Howdy, Bo!" {
		t.Fatalf("invoke after secret: %d %q", status, body)
	}
	if _, err := ns.Scripts.Secrets.Delete(ctx, "customers", "hello", "GREETING", wfp.DispatchNamespaceScriptSecretDeleteParams{AccountID: acct}); err != nil {
		t.Fatalf("secrets Delete: %v", err)
	}
	if status, body := e.invoke("customers", "hello", version, "/?name=Cy"); status != 200 || body != "Hello, Cy!" {
		t.Fatalf("invoke after secret delete: %d %q", status, body)
	}

	// Delete: the script is gone from the API and from the invocation path.
	if _, err := ns.Scripts.Delete(ctx, "customers", "hello", wfp.DispatchNamespaceScriptDeleteParams{AccountID: acct}); err != nil {
		t.Fatalf("script Delete: %v", err)
	}
	_, err = ns.Scripts.Get(ctx, "customers", "hello", wfp.DispatchNamespaceScriptGetParams{AccountID: acct})
	var apiErr *cloudflare.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("script Get after delete: %v", err)
	}
	if status, body := e.invoke("customers", "hello", version, "/"); status != http.StatusNotFound || !strings.Contains(body, "Worker not found") {
		t.Fatalf("invoke after delete: %d %q", status, body)
	}

	// Errors come back in Cloudflare's shape.
	_, err = ns.New(ctx, wfp.DispatchNamespaceNewParams{AccountID: acct, Name: cloudflare.F("customers")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate namespace: %v", err)
	}
	if _, err := ns.Delete(ctx, "customers", wfp.DispatchNamespaceDeleteParams{AccountID: acct}); err != nil {
		t.Fatalf("namespace Delete: %v", err)
	}
	if e.pid("customers", "hello") != 0 {
		t.Fatalf("namespace process survived the namespace's deletion")
	}
}

func (e *env) listScripts(ns, filter string) []string {
	e.t.Helper()
	path := "/" + ns + "/scripts"
	if filter != "" {
		path += "?tags=" + filter
	}
	status, env := e.api(http.MethodGet, path, nil)
	if status != http.StatusOK {
		e.t.Fatalf("list scripts: %d %+v", status, env.Errors)
	}
	var scripts []struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(env.Result, &scripts)
	out := []string{}
	for _, s := range scripts {
		out = append(out, s.ID)
	}
	return out
}

func readMultipart(t *testing.T, res *http.Response) map[string]string {
	t.Helper()
	defer res.Body.Close()
	_, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	out := map[string]string{}
	mr := multipart.NewReader(res.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, _ := io.ReadAll(p)
		out[p.FormName()] = string(b)
	}
}
