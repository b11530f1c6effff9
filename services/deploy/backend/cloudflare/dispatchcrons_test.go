package cloudflare_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// cronUserJS is a user worker as its developer writes it: scheduled()
// reports its cron and time to the LOG service (a worker named "gamma"
// throws first), fetch() reports what it saw.
const cronUserJS = `export default {
  async scheduled(controller, env, ctx) {
    if (env.NAME === "gamma") throw new Error("gamma fails");
    ctx.waitUntil(env.LOG.fetch("http://log/", { method: "POST", body: JSON.stringify(
      { worker: env.NAME, event: "scheduled", cron: controller.cron, time: controller.scheduledTime }) }));
  },
  async fetch(req, env) {
    await env.LOG.fetch("http://log/", { method: "POST", body: JSON.stringify(
      { worker: env.NAME, event: "fetch", marker: req.headers.get("` + routing.ScheduledHeader + `") }) });
    return new Response("fetched by " + env.NAME);
  },
};`

// cronDispatcherHarness hands the generated dispatch Worker a stand-in
// for its dispatch namespace: get(name) returns the service binding
// W_<name>, a user worker wrapped as on Cloudflare.
var cronDispatcherHarness = namespaceHarness("index.js", routing.NamespaceBinding, "W_")

// cronShim fires the dispatch Worker's scheduled event, as Cloudflare's
// cron trigger would: GET /?cron=EXPR&time=MS calls TARGET.scheduled()
// (the local runtime's way, see services/runtime/workerd).
const cronShim = `export default { async fetch(req, env) {
  const u = new URL(req.url);
  try {
    await env.TARGET.scheduled({ cron: u.searchParams.get("cron"), scheduledTime: Number(u.searchParams.get("time")) });
    return new Response("ok");
  } catch (e) { return new Response(String(e), { status: 500 }); }
} }`

type cronEvent struct {
	Worker string `json:"worker"`
	Event  string `json:"event"`
	Cron   string `json:"cron"`
	Time   int64  `json:"time"`
	Marker string `json:"marker"`
}

// TestDispatchWorkerFiresCrons runs the generated dispatch Worker in
// workerd with three user workers wrapped as Cloudflare gets them: its
// scheduled() runs exactly the workers of the cron that fired, with that
// cron and time, one that throws not stopping the others; an outside
// request carrying the scheduled marker reaches fetch() without it and
// runs no scheduled().
func TestDispatchWorkerFiresCrons(t *testing.T) {
	var mu sync.Mutex
	var events []cronEvent
	logSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e cronEvent
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("log: %v: %s", err, body)
		}
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	defer logSrv.Close()
	take := func(want int) []cronEvent {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(events)
			mu.Unlock()
			if n >= want || time.Now().After(deadline) {
				time.Sleep(200 * time.Millisecond) // and nothing more
				mu.Lock()
				defer mu.Unlock()
				got := events
				events = nil
				slices.SortFunc(got, func(a, b cronEvent) int { return strings.Compare(a.Worker, b.Worker) })
				return got
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	workers := []string{"alpha", "beta", "gamma"}
	w, err := routing.GenerateWorker(routing.Table{BaseDomains: []string{"do"}, Workers: workers, Subdomains: true, DefaultWorker: "alpha", DefaultHosts: []string{"do"}}, routing.WorkerOptions{
		Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01",
		Crons: map[string][]string{"*/5 * * * *": {"gamma", "beta", "alpha"}, "0 3 * * *": {"beta"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"harness.js": []byte(cronDispatcherHarness), "index.js": w.Module, "cron.js": []byte(cronShim),
		"wrapper.js": []byte(cloudflare.WrapperJS("user.js", nil)), "user.js": []byte(cronUserJS)}
	logAddr := strings.TrimPrefix(logSrv.URL, "http://")
	config := func(dir string) string {
		var svcs, binds, defs strings.Builder
		for _, name := range workers {
			fmt.Fprintf(&svcs, "    (name = %q, worker = .%s),\n", name, name)
			fmt.Fprintf(&binds, "    (name = %q, service = %q),\n", "W_"+name, name)
			fmt.Fprintf(&defs, `const %s :Workerd.Worker = (
  compatibilityDate = "2025-01-01",
  modules = [
    (name = %q, esModule = embed "wrapper.js"),
    (name = "user.js", esModule = embed "user.js"),
  ],
  bindings = [(name = "NAME", text = %q), (name = "LOG", service = "log")],
);
`, name, cloudflare.WrapperModule, name)
		}
		return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .dispatcher),
    (name = "cron", worker = .cron),
    (name = "log", external = (address = ` + strconv.Quote(logAddr) + `, http = ())),
` + svcs.String() + `  ],
  sockets = [
    (name = "http", address = ` + strconv.Quote("unix:"+filepath.Join(dir, routingtest.SocketName)) + `, http = (), service = "main"),
    (name = "cron", address = ` + strconv.Quote("unix:"+filepath.Join(dir, "cron.sock")) + `, http = (), service = "cron"),
  ],
);
const dispatcher :Workerd.Worker = (
  compatibilityDate = "2025-01-01",
  modules = [(name = "harness.js", esModule = embed "harness.js"), (name = "index.js", esModule = embed "index.js")],
  bindings = [
` + binds.String() + `  ],
);
const cron :Workerd.Worker = (
  compatibilityDate = "2025-01-01",
  modules = [(name = "cron.js", esModule = embed "cron.js")],
  bindings = [(name = "TARGET", service = "main")],
);
` + defs.String()
	}
	wd := routingtest.ServeWorkerd(t, config, files)
	cronClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(wd.Dir, "cron.sock"))
		}}}
	fire := func(cron string, at int64) {
		t.Helper()
		res, err := cronClient.Get("http://cron/?" + url.Values{"cron": {cron}, "time": {strconv.FormatInt(at, 10)}}.Encode())
		if err != nil {
			t.Fatalf("fire %q: %v", cron, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("fire %q: %d %s", cron, res.StatusCode, body)
		}
	}

	fire("*/5 * * * *", 1700000000000)
	want := []cronEvent{{Worker: "alpha", Event: "scheduled", Cron: "*/5 * * * *", Time: 1700000000000}, {Worker: "beta", Event: "scheduled", Cron: "*/5 * * * *", Time: 1700000000000}}
	if got := take(2); !slices.Equal(got, want) {
		t.Fatalf("*/5: ran %+v; want %+v (gamma throws)", got, want)
	}
	fire("0 3 * * *", 1700000100000)
	if got := take(1); !slices.Equal(got, []cronEvent{{Worker: "beta", Event: "scheduled", Cron: "0 3 * * *", Time: 1700000100000}}) {
		t.Fatalf("0 3: ran %+v", got)
	}
	fire("1 1 * * *", 1700000200000)
	if got := take(0); len(got) != 0 {
		t.Fatalf("a cron of no worker ran %+v", got)
	}

	// From outside: the marker is removed, fetch() runs, scheduled() not.
	req, _ := http.NewRequest("GET", wd.BaseURL+"/", nil)
	req.Host = "alpha.do"
	req.Header.Set(routing.ScheduledHeader, "1700000000000 */5 * * * *")
	res, err := wd.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "fetched by alpha" || res.Header.Get(routing.ScheduledHeader) != "" {
		t.Fatalf("an outside request with the marker: %d %q %v", res.StatusCode, body, res.Header)
	}
	if got := take(1); !slices.Equal(got, []cronEvent{{Worker: "alpha", Event: "fetch"}}) {
		t.Fatalf("an outside request with the marker ran %+v", got)
	}
}
