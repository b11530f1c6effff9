package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
)

// allowAll authorizes every key as an admin.
type allowAll struct{}

func (allowAll) Authenticate(context.Context, string, string) (authz.Principal, error) {
	return authz.Principal{KeyID: "fuzz", Role: store.RoleAdmin}, nil
}

func (allowAll) Authorize(context.Context, string, authz.Permission, string, string) (authz.Principal, error) {
	return authz.Principal{KeyID: "fuzz", Role: store.RoleAdmin}, nil
}

// blobsDown refuses to store a bundle: a decoded, validated deploy stops
// there, with Unavailable. Nothing else of the store is reached.
type blobsDown struct{ deploy.Records }

func (blobsDown) PutBlob(context.Context, []byte) (string, error) {
	return "", errkind.New(errkind.Unavailable, "blobs down")
}

// FuzzDeployREST posts arbitrary bodies to the REST path POST /deploy of
// the deploy server (the gate, the original API's content-type fix-up,
// vanguard's JSON transcoding, protovalidate, the handler's conversion and
// the service's validation and bundling). It checks that nothing panics
// and that every answer is a client error or the store's refusal, never an
// internal error, in JSON. The committed seed corpus lives in
// testdata/fuzz/FuzzDeployREST.
func FuzzDeployREST(f *testing.F) {
	for _, s := range []string{
		`{"service":"gateway","environment":"production","script":"ZXhwb3J0IGRlZmF1bHQge30=","metadata":{"commit":"abc123","branch":"main","author":"github-actions"}}`,
		`{"service":"gateway","environment":"production","modules":[{"name":"index.js","content":"eA==","type":"MODULE_TYPE_ESM"},{"name":"lib/a.json","content":"e30=","type":"MODULE_TYPE_JSON"}],"mainModule":"index.js","compatibilityDate":"2025-01-01","compatibilityFlags":["nodejs_compat"],"tags":["t"],"idempotencyKey":"k"}`,
		`{"service":"gateway","environment":"production","modules":[{"name":"../evil.js","content":"eA=="}]}`,
		`{"service":"BAD","environment":"nowhere","script":"!!"}`,
		`{"service":"gateway","environment":"production","script":"eA==","metadata":{"labels":{"a":"b"}},"unknown":1}`,
		`{"modules":[{"type":42}]}`,
		`{"service":null}`,
		`[]`,
		`{`,
		``,
		"\x00\xff",
	} {
		f.Add([]byte(s))
	}
	svc, err := deploy.New(deploy.Config{}, allowAll{}, blobsDown{}, backend.NewMemory(), deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		f.Fatal(err)
	}
	opts, err := rpc.HandlerOptions(rpc.WithReadMaxBytes(svc.Config().ReadMaxBytes()), rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		f.Fatal(err)
	}
	srv := server.New("deploy", server.WithLogger(testsupport.QuietLogger()), server.WithREST(),
		server.WithMiddleware(deploy.RESTCompat), server.WithMiddleware(deploy.Gate))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(svc), opts...))
	h, err := srv.Handler()
	if err != nil {
		f.Fatal(err)
	}
	key := apikey.Generate().Token
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ctype := range []string{"application/json", ""} {
			r := httptest.NewRequest(http.MethodPost, "/deploy", bytes.NewReader(body))
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			r.Header.Set("Authorization", "Bearer "+key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			switch {
			case w.Code == http.StatusServiceUnavailable: // decoded and valid: the store refused
			case w.Code >= 400 && w.Code < 500:
			default:
				t.Fatalf("POST /deploy answered %d: %s", w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body)
			}
		}
	})
}
