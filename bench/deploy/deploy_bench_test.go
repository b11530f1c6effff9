// Package deploybench measures a deploy through the real Deploy API over
// loopback REST (vanguard -> Connect handler -> deploy domain: auth, SQLite
// store, lease, audit, upload), for a 173 KiB worker:
//
//	go test ./bench/deploy -run '^$' -bench . -benchtime 1x
//
// BenchmarkDeploy/memory uses the no-op in-memory backend, so it measures
// the orchestration alone; BenchmarkDeploy/runtime uploads to the local
// runtime (cloudflare-go -> Cloudflare API -> workerd start-up check ->
// disk). In the same run, each deploy is interleaved with a direct call of
// the same backend's Upload with a worker of the same size, so the
// orchestration's cost is reported next to the backend's, as a difference
// and as a ratio. A last phase runs 4 clients at once, each on its own
// service, for throughput.
//
// Each benchmark measures once per process (a fixed number of deploys);
// ns/op is the measurement's wall time: read the custom metrics.
package deploybench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// ScriptSize is the size of the deployed worker.
const ScriptSize = 173 << 10

const (
	sequential = 120 // deploys measured one after the other
	parallel   = 4   // clients in the throughput phase
	perClient  = 30  // deploys per client in the throughput phase
)

// script returns a valid ES module of exactly ScriptSize bytes, unique to
// n (so every deploy stores a new bundle and uploads a new version).
func script(n int) []byte {
	head := fmt.Sprintf("// build %d\nexport default { fetch() { return new Response(\"ok %d\") } };\n/*", n, n)
	body := bytes.Repeat([]byte("dotdo "), ScriptSize/6+1)
	out := append([]byte(head), body[:ScriptSize-len(head)-2]...)
	return append(out, "*/"...)
}

type stack struct {
	url     string
	token   string
	backend backend.Backend
	client  *http.Client
	// directVersion numbers the direct uploads (the benchmark's goroutine
	// only).
	directVersion int64
}

func start(b *testing.B, kind string) *stack {
	b.Helper()
	var be backend.Backend
	switch kind {
	case "memory":
		be = backend.NewMemory()
	case "runtime":
		be = deploytest.StartRuntime(b).Backend(b)
	}
	authSvc, keys := deploytest.Auth(b)
	st := deploytest.Store(b)
	svc, err := deploy.New(deploy.Config{}, authSvc, st, be, deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.EnsureConfiguredNamespaces(context.Background()); err != nil {
		b.Fatal(err)
	}
	opts, err := rpc.HandlerOptions(rpc.WithReadMaxBytes(svc.Config().ReadMaxBytes()), rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New("deploy", server.WithLogger(testsupport.QuietLogger()), server.WithREST(), server.WithMiddleware(deploy.RESTCompat))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(svc), opts...))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel * 2}}
	url := testsupport.Serve(b, srv, testsupport.CloseIdle(client))
	return &stack{url: url, token: keys.Deployer, backend: be, client: client}
}

// deploy POSTs the original REST body to /deploy.
func (s *stack) deploy(service string, code []byte) error {
	body, _ := json.Marshal(map[string]any{
		"service": service, "environment": "production", "script": base64.StdEncoding.EncodeToString(code),
		"metadata": map[string]string{"commit": "abc123", "branch": "main", "author": "bench"},
	})
	req, err := http.NewRequest(http.MethodPost, s.url+"/deploy", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /deploy: %d %s", res.StatusCode, out)
	}
	return nil
}

// upload calls the backend alone with a worker like the deployed one.
// upload sends a script to the backend as a deploy would, with the same
// two tags; the version tag rises, as the runtime requires.
func (s *stack) upload(code []byte) error {
	s.directVersion++
	return s.backend.Upload(context.Background(), "dotdo-production", backend.Script{
		Name: "direct", MainModule: "index.js", CompatibilityDate: deploy.DefaultCompatibilityDate,
		Modules: []backend.Module{{Name: "index.js", Content: code, Type: backend.ModuleESM}},
		Tags:    []string{"dotdo-deployment=bench", fmt.Sprintf("dotdo-version=%d", s.directVersion)},
	})
}

func timed(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func BenchmarkDeploy(b *testing.B) {
	for _, kind := range []string{"memory", "runtime"} {
		b.Run(kind, func(b *testing.B) {
			s := start(b, kind)
			n := 0
			next := func() []byte { n++; return script(n) }
			for range 5 { // warm up connections, caches and workerd
				if err := s.deploy("gateway", next()); err != nil {
					b.Fatal(err)
				}
				if err := s.upload(next()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var deploys, uploads []time.Duration
			var deployTotal time.Duration
			for range sequential {
				d, err := timed(func() error { return s.deploy("gateway", next()) })
				if err != nil {
					b.Fatal(err)
				}
				deploys, deployTotal = append(deploys, d), deployTotal+d
				u, err := timed(func() error { return s.upload(next()) })
				if err != nil {
					b.Fatal(err)
				}
				uploads = append(uploads, u)
			}

			codes := make([][][]byte, parallel)
			for c := range codes {
				for range perClient {
					codes[c] = append(codes[c], next())
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, parallel)
			t0 := time.Now()
			for c := range parallel {
				wg.Go(func() {
					for _, code := range codes[c] {
						if err := s.deploy(fmt.Sprintf("svc-%d", c), code); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			wall := time.Since(t0)
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.StopTimer()

			dp50, up50 := percentile(deploys, 0.5), percentile(uploads, 0.5)
			b.ReportMetric(ms(dp50), "deploy-p50-ms")
			b.ReportMetric(ms(percentile(deploys, 0.99)), "deploy-p99-ms")
			b.ReportMetric(float64(sequential)/deployTotal.Seconds(), "deploys/s")
			b.ReportMetric(float64(parallel*perClient)/wall.Seconds(), "deploys/s-4clients")
			b.ReportMetric(ms(up50), "backend-p50-ms")
			b.ReportMetric(ms(percentile(uploads, 0.99)), "backend-p99-ms")
			b.ReportMetric(ms(dp50-up50), "overhead-p50-ms")
			b.ReportMetric(float64(dp50)/float64(up50), "deploy/backend-p50")
		})
	}
}
