package dispatcher_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
	"github.com/dot-do/platform/services/dispatcher"
)

// standInRuntime is the runtime as the vectors need it: every worker
// answers with what it received (routingtest.WriteEcho).
type standInRuntime struct{}

func (standInRuntime) Invoke(w http.ResponseWriter, r *http.Request, _, worker string, _ int64, _, _ string) {
	routingtest.WriteEcho(w, r, worker, r.URL.EscapedPath())
}

// TestVectors runs the shared routing vectors on both data planes in one
// test: the Go dispatcher (Route for every vector, and an HTTP request
// through ServeHTTP for every vector an HTTP client can send), and the
// dispatch Worker generated from each table, in workerd, with a stand-in
// for its dispatch namespace binding.
func TestVectors(t *testing.T) {
	suite, err := routingtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]int64{}
	for i, w := range suite.Deployed {
		live[w] = int64(i + 1)
	}
	for name, table := range suite.Tables {
		t.Run(name, func(t *testing.T) {
			src := newFake(suite.Environment, live)
			src.setTable(table)
			d := newDispatcher(t, dispatcher.Config{Environment: suite.Environment, Namespace: suite.Namespace, Runtime: standInRuntime{}}, src)
			base := front(t, d)
			worker, err := routing.GenerateWorker(table, routing.WorkerOptions{
				Environment: suite.Environment, Namespace: suite.Namespace, CompatibilityDate: "2025-01-01", TableVersion: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			wd := routingtest.StartWorkerd(t, worker, "2025-01-01", suite.Deployed)
			var goRoute, goHTTP, js int
			for _, v := range suite.Vectors {
				if v.Table != name {
					continue
				}
				if v.Method != http.MethodConnect {
					goRoute++
					checkRoute(t, d, suite, v)
				}
				switch {
				case v.Method == http.MethodConnect:
					// Net/http clients send CONNECT to proxies only: hand it
					// to the handler.
					rec := httptest.NewRecorder()
					d.ServeHTTP(rec, httptest.NewRequest(http.MethodConnect, "http://"+v.Host+v.Path, nil))
					goHTTP++
					if err := v.Check(rec.Result()); err != nil {
						t.Errorf("Go dispatcher: %s: %v", v, err)
					}
				case v.Only == "go":
				default:
					req, err := v.Request(base)
					if err != nil {
						t.Fatal(err)
					}
					res, err := testClient.Do(req)
					if err != nil {
						t.Fatalf("Go dispatcher: %s: %v", v, err)
					}
					goHTTP++
					if err := v.Check(res); err != nil {
						t.Errorf("Go dispatcher: %s: %v", v, err)
					}
					js++
					if err := wd.Do(v); err != nil {
						t.Errorf("dispatch Worker: %s: %v", v, err)
					}
				}
			}
			t.Logf("%d vectors: %d routed by the Go dispatcher, %d sent to it over HTTP, %d to the dispatch Worker in workerd", goRoute, goRoute, goHTTP, js)
		})
	}
}

// checkRoute checks the Go dispatcher's Route for v.
func checkRoute(t *testing.T, d *dispatcher.Dispatcher, suite routingtest.Suite, v routingtest.Vector) {
	t.Helper()
	r := d.Route(v.Host, v.Path)
	if v.Worker != "" {
		if r.Miss != routing.MissNone || r.Worker != v.Worker || r.Rule.String() != v.Rule || r.Version <= 0 || r.Namespace != suite.Namespace {
			t.Errorf("Go dispatcher: Route %s = %+v; want %s by %s", v, r, v.Worker, v.Rule)
		}
		return
	}
	if r.Miss.Status() != v.Status || r.Miss.Code() != v.Code || r.Reason != v.Message {
		t.Errorf("Go dispatcher: Route %s = %d %s %q; want %d %s %q", v, r.Miss.Status(), r.Miss.Code(), r.Reason, v.Status, v.Code, v.Message)
	}
}
