package control

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
	"github.com/dot-do/platform/services/deploy/deploytest"
	rt "github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/scripts"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// ScriptSize is the size of a measured deploy's worker, the original
// report's.
const ScriptSize = 173 << 10

const (
	namespace   = "dotdo-production"
	apiToken    = "scale-runtime-token-8d2f61c0a4b7"
	invokeToken = "scale-invoke-token-3e9a07d5c1f2"
	seeders     = 4 // goroutines seeding the runtime's script store
)

// script returns a valid ES module of exactly size bytes, unique to n.
func script(n, size int) []byte {
	head := fmt.Sprintf("// build %d\nexport default { fetch() { return new Response(\"ok %d\") } };\n/*", n, n)
	if size < len(head)+2 {
		size = len(head) + 2
	}
	body := bytes.Repeat([]byte("dotdo "), size/6+1)
	out := append([]byte(head), body[:size-len(head)-2]...)
	return append(out, "*/"...)
}

func workerName(i int) string { return fmt.Sprintf("w%05d", i) }

func testDeployCurve(t *testing.T, sz sizes) {
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping the deploy curve: the local runtime needs workerd (npm ci installs it): %v", err)
	}
	tb := newTable(t, "Deploy latency vs namespace size (173 KiB worker, local runtime, Deploy API over Connect; sizes interleaved deploy by deploy)",
		"store", "workers", "deploys", "p50 ms", "p99 ms", "p50 / p50 at smallest", "p99 / p99 at smallest", "seed s")
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			// One stack per namespace size, all up at once, then deploys
			// in rounds over the sizes: a load that changes during the
			// run (this machine is shared) falls on every size alike.
			stacks := make([]*deployStack, len(sz.workers))
			for i, n := range sz.workers {
				stacks[i] = newDeployStack(t, kind, n)
			}
			const warm = 3
			lat := make([]latencies, len(stacks))
			for i := range warm + sz.deploys {
				for k, s := range stacks {
					start := time.Now()
					if err := s.deploy(t, i); err != nil {
						t.Fatalf("%d workers, deploy %d: %v", s.n, i, err)
					}
					if i >= warm {
						lat[k] = append(lat[k], time.Since(start))
					}
				}
			}
			for k, s := range stacks {
				tb.add(kind, s.n, len(lat[k]), ms(lat[k].pct(0.5)), ms(lat[k].pct(0.99)),
					fmt.Sprintf("%.2f", float64(lat[k].pct(0.5))/float64(lat[0].pct(0.5))),
					fmt.Sprintf("%.2f", float64(lat[k].pct(0.99))/float64(lat[0].pct(0.99))), fmt.Sprintf("%.1f", s.seed.Seconds()))
			}
		})
	}
}

// deployStack is the Deploy API over a namespace seeded with n workers.
type deployStack struct {
	n      int
	seed   time.Duration
	client deployv1connect.DeployServiceClient
	token  string
}

// newDeployStack seeds a namespace of n workers and starts the Deploy API
// on it, with its own store, runtime and auth service.
func newDeployStack(t *testing.T, kind string, n int) *deployStack {
	ctx := t.Context()
	var st store.Store
	switch kind {
	case "sqlite":
		st = deploytest.Store(t)
	case "postgres":
		st = pgtest.Open(t)
	}
	dataDir := filepath.Join(t.TempDir(), "runtime")
	start := time.Now()
	seedNamespace(t, st, dataDir, n)
	seed := time.Since(start)

	r, err := rt.New(ctx, rt.Config{DataDir: dataDir, APIToken: apiToken, InvokeToken: invokeToken, Logger: testsupport.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rsrv := httptest.NewServer(r.Handler())
	t.Cleanup(func() { rsrv.Close(); r.Close() })
	be, err := cloudflare.New(cloudflare.Config{AccountID: rt.DefaultAccountID, APIToken: apiToken, BaseURL: rsrv.URL + "/client/v4", Name: "runtime", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := be.NamespaceInfo(ctx, namespace); err != nil || info.ScriptCount != int64(n) {
		t.Fatalf("namespace %s holds %d scripts (%v), want %d", namespace, info.ScriptCount, err, n)
	}

	authSvc, keys := deploytest.Auth(t)
	svc, err := deploy.New(deploy.Config{}, authSvc, st, be, deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := rpc.HandlerOptions(rpc.WithReadMaxBytes(svc.Config().ReadMaxBytes()), rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("deploy", server.WithLogger(testsupport.QuietLogger()))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(svc), opts...))
	hc := &http.Client{}
	client := deployv1connect.NewDeployServiceClient(hc, testsupport.Serve(t, srv, testsupport.CloseIdle(hc)))
	return &deployStack{n: n, seed: seed, client: client, token: keys.Deployer}
}

// deploy deploys a new 173 KiB version of a worker of the namespace,
// workers taken with a prime stride so deploys spread over it.
func (s *deployStack) deploy(t *testing.T, i int) error {
	w := (i * 7919) % s.n
	req := connect.NewRequest(&deployv1.DeployRequest{Service: workerName(w), Environment: "production", Script: script(s.n*1000+i, ScriptSize)})
	req.Header().Set("Authorization", "Bearer "+s.token)
	res, err := s.client.Deploy(t.Context(), req)
	if err != nil {
		return err
	}
	d := res.Msg.GetDeployment()
	if d.GetStatus() != deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE || d.GetVersion() < 2 {
		return fmt.Errorf("deploy of %s: status %v, version %d; want live, above the seeded version 1", workerName(w), d.GetStatus(), d.GetVersion())
	}
	return nil
}

// seedNamespace records n live workers in st (a deployment each, through
// the store's API) and writes them into a runtime script store in dataDir,
// tagged as the Deploy API tags its uploads, before the runtime opens it.
func seedNamespace(t *testing.T, st store.Store, dataDir string, n int) {
	ctx := t.Context()
	code := script(0, 1024)
	sha, err := st.PutBlob(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		d, _, err := st.BeginDeployment(ctx, store.NewDeployment{Service: workerName(i), Environment: "production", Namespace: namespace,
			ScriptSHA256: sha, ScriptSize: int64(len(code)), MainModule: "index.js", CompatibilityDate: deploy.DefaultCompatibilityDate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
			t.Fatal(err)
		}
		ids[i] = d.ID
	}
	ss, err := scripts.Open(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if _, err := ss.CreateNamespace(namespace); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, seeders)
	for g := range seeders {
		wg.Go(func() {
			for i := g; i < n; i += seeders {
				_, err := ss.PutVersion(namespace, workerName(i), scripts.Draft{
					MainModule: "index.js", CompatibilityDate: deploy.DefaultCompatibilityDate,
					Modules: []scripts.Module{{ModuleInfo: scripts.ModuleInfo{Name: "index.js", ContentType: "application/javascript+module", Type: scripts.ModuleESM}, Content: code}},
					Tags:    []string{"dotdo-deployment=" + ids[i], "dotdo-version=1"},
				})
				if err != nil {
					errs <- fmt.Errorf("seed worker %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
