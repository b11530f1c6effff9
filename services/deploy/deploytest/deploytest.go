// Package deploytest builds the pieces of a Deploy API for tests and
// benchmarks: a SQLite store in a temporary directory, an in-memory auth
// service with one key per role, and the local runtime (the platform's
// Cloudflare-API-compatible namespace host) on a loopback port.
package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// Store opens a SQLite store in a new temporary directory; it is closed
// when tb ends.
func Store(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "dotdo.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Keys holds one API key (the full bearer token) per kind of caller.
type Keys struct {
	// Admin has every permission on every environment.
	Admin string
	// Deployer may deploy, roll back and read everywhere.
	Deployer string
	// Viewer may only read deployments.
	Viewer string
	// StagingDeployer is a deployer limited to the "staging" environment.
	StagingDeployer string
}

// Auth returns an auth service over a SQLite store of its own, without
// throttling, and a key of each kind.
func Auth(tb testing.TB) (*auth.Service, Keys) {
	tb.Helper()
	ctx := context.Background()
	svc := auth.New(sqlitetest.Open(tb), auth.WithThrottle(auth.ThrottleConfig{MaxFailures: -1}), auth.WithLogger(testsupport.QuietLogger()))
	admin, adminRec, err := svc.Bootstrap(ctx, "test-admin")
	if err != nil {
		tb.Fatal(err)
	}
	p := authz.Principal{KeyID: adminRec.KeyID, Name: adminRec.Name, Role: adminRec.Role}
	mk := func(name string, role store.Role, envs ...string) string {
		k, _, err := svc.CreateKey(ctx, p, name, role, envs, 0)
		if err != nil {
			tb.Fatal(err)
		}
		return k.Token
	}
	return svc, Keys{
		Admin:           admin.Token,
		Deployer:        mk("test-deployer", store.RoleDeployer),
		Viewer:          mk("test-viewer", store.RoleViewer),
		StagingDeployer: mk("test-staging-deployer", store.RoleDeployer, "staging"),
	}
}

// RuntimeToken is the API token of the runtimes Runtime starts.
const RuntimeToken = "deploytest-runtime-token-5f1c0e7a9b3d"

// Runtime is a local runtime serving the Cloudflare API on loopback.
type Runtime struct {
	// URL is the runtime's root URL.
	URL string
	// BaseURL is the API's base URL, ending in /client/v4.
	BaseURL string
	// AccountID is the account id the runtime answers for.
	AccountID string
	// Token is the API token.
	Token string
}

// Backend returns a cloudflare backend named "runtime" on r, without
// retries.
func (r *Runtime) Backend(tb testing.TB) *cloudflare.Backend {
	tb.Helper()
	b, err := cloudflare.New(cloudflare.Config{AccountID: r.AccountID, APIToken: r.Token, BaseURL: r.BaseURL, Name: "runtime", MaxRetries: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// StartRuntime starts a local runtime in a temporary directory behind a
// loopback httptest server, stopped when tb ends. It skips tb when no
// workerd binary is installed (npm install provides one).
func StartRuntime(tb testing.TB) *Runtime {
	tb.Helper()
	if _, err := workerd.FindBinary("", ""); err != nil {
		tb.Skipf("skipping: the local runtime needs workerd: %v", err)
	}
	rt, err := runtime.New(context.Background(), runtime.Config{
		DataDir:     tb.TempDir(),
		APIToken:    RuntimeToken,
		InvokeToken: invokeToken,
		Logger:      testsupport.QuietLogger(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	tb.Cleanup(func() {
		srv.Close()
		rt.Close()
	})
	return &Runtime{URL: srv.URL, BaseURL: srv.URL + "/client/v4", AccountID: runtime.DefaultAccountID, Token: RuntimeToken}
}

// invokeToken is the invocation credential of the runtimes StartRuntime
// starts.
const invokeToken = "deploytest-invoke-token-2a9e4c61d7f0"

// Invoke sends a GET request for / to the current version of script in
// namespace, as the dispatcher would, and returns the worker's status and
// body.
func (r *Runtime) Invoke(tb testing.TB, namespace, script string) (int, string) {
	tb.Helper()
	return r.InvokePath(tb, namespace, script, "/")
}

// InvokePath is Invoke for path, which starts with a slash.
func (r *Runtime) InvokePath(tb testing.TB, namespace, script, path string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/accounts/%s/workers/dispatch/namespaces/%s/scripts/%s", r.BaseURL, r.AccountID, namespace, script), nil)
	req.Header.Set("Authorization", "Bearer "+r.Token)
	var details struct {
		Result struct {
			Script struct {
				Version int64 `json:"dotdo_version"`
			} `json:"script"`
		} `json:"result"`
	}
	if err := doJSON(req, &details); err != nil {
		tb.Fatalf("script details: %v", err)
	}
	req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("%s%s%s/%s/%d%s", r.URL, runtime.InvokePrefix, namespace, script, details.Result.Script.Version, path), nil)
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("invoke: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func doJSON(req *http.Request, out any) error {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, b)
	}
	return json.NewDecoder(res.Body).Decode(out)
}
