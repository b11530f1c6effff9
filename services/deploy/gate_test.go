package deploy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/deploy"
)

// trippedBody is a request body that records whether anyone read it.
type trippedBody struct {
	io.Reader
	read *atomic.Bool
}

func (b trippedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.Reader.Read(p)
}

func (b trippedBody) Close() error { return nil }

// TestGateRefusesBeforeTheBody: a request without a well-formed key is
// refused, in its own protocol, without its body being read; health,
// reflection and a well-formed key pass.
func TestGateRefusesBeforeTheBody(t *testing.T) {
	var reached atomic.Bool
	h := deploy.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
		w.WriteHeader(http.StatusNoContent)
	}))
	valid := apikey.Generate().Token
	badChecksum := valid[:len(valid)-1] + "0"
	if valid[len(valid)-1] == '0' {
		badChecksum = valid[:len(valid)-1] + "1"
	}
	const deployPath = "/dotdo.deploy.v1.DeployService/Deploy"
	for _, tc := range []struct {
		name, method, path, ctype, auth string
		status                          int
		grpcStatus                      string
		bodyHas                         string
		pass                            bool
	}{
		{"connect, no key", "POST", deployPath, "application/json", "", 401, "", `"code":"unauthenticated"`, false},
		{"connect, malformed key", "POST", deployPath, "application/proto", "Bearer dotdo_nope", 401, "", "", false},
		{"connect, bad checksum", "POST", deployPath, "application/json", "Bearer " + badChecksum, 401, "", "", false},
		{"connect, basic auth", "POST", deployPath, "application/json", "Basic " + valid, 401, "", "", false},
		{"grpc, no key", "POST", deployPath, "application/grpc", "", 200, "16", "", false},
		{"grpc-web, no key", "POST", deployPath, "application/grpc-web+proto", "", 200, "16", "", false},
		{"rest, no key", "POST", "/deploy", "application/json", "", 401, "", `"code":16`, false},
		{"rest, form body", "POST", "/deploy", "application/x-www-form-urlencoded", "Bearer x", 401, "", `"code":16`, false},
		{"rest, other path", "GET", "/deployments", "", "", 401, "", `"code":16`, false},
		{"connect, well-formed key", "POST", deployPath, "application/json", "Bearer " + valid, 204, "", "", true},
		{"rest, well-formed key", "POST", "/deploy", "application/json", "bearer " + valid, 204, "", "", true},
		{"health, no key", "GET", "/health", "", "", 204, "", "", true},
		{"health rpc, no key", "POST", "/dotdo.deploy.v1.DeployService/Health", "application/json", "", 204, "", "", true},
		{"health, malformed key", "GET", "/health", "", "Bearer nope", 401, "", "", false},
		{"grpc health", "POST", "/grpc.health.v1.Health/Check", "application/grpc", "", 204, "", "", true},
		{"reflection", "POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc", "", 204, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached.Store(false)
			var read atomic.Bool
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Body = trippedBody{Reader: strings.NewReader(strings.Repeat("x", 1<<20)), read: &read}
			req.ContentLength = 1 << 20
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if reached.Load() != tc.pass {
				t.Fatalf("handler reached: %v, want %v", reached.Load(), tc.pass)
			}
			if !tc.pass && read.Load() {
				t.Fatal("the body of a refused request was read")
			}
			if tc.grpcStatus != "" && rec.Header().Get("Grpc-Status") != tc.grpcStatus && rec.Result().Trailer.Get("Grpc-Status") != tc.grpcStatus {
				t.Fatalf("grpc-status %q, want %q (headers %v)", rec.Header().Get("Grpc-Status"), tc.grpcStatus, rec.Header())
			}
			if !strings.Contains(rec.Body.String(), tc.bodyHas) {
				t.Fatalf("body %q lacks %q", rec.Body, tc.bodyHas)
			}
		})
	}
}
