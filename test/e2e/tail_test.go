package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/cli"
	"github.com/dot-do/platform/internal/tail"
	"github.com/dot-do/platform/internal/testsupport"
)

// TestTail: `dotdo tail --format json` on a real `dotdo dev` shows a
// request that logs and a request that throws, each within 2 s, as
// wrangler-shaped JSON lines; it ends with code 0 on an interrupt; without
// a key, or with a key of another environment, it fails with a clear
// error.
func TestTail(t *testing.T) {
	need(t)
	worker := filepath.Join(t.TempDir(), "worker.js")
	testsupport.WriteFile(t, worker, `export default { fetch(req) {
  const p = new URL(req.url).pathname;
  if (p === "/log") { console.log("marker", { from: "e2e" }); return new Response("logged", { status: 201 }); }
  if (p === "/throw") throw new TypeError("thrown for the tail");
  return new Response("ok");
} }`, 0o644)
	ok(t, "deploy", "--service", "mcp", "--env", "production", "--file", worker)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, platform.bin, "tail", "--service", "mcp", "--env", "production", "--format", "json")
	cmd.Env = append(append([]string{}, platform.env...), "DOTDO_API_KEY="+platform.adminKey)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("dotdo tail: %s", sc.Text())
			if strings.HasPrefix(sc.Text(), "Tailing") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("dotdo tail did not start")
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	get := func(path string) int {
		status, _ := send(t, http.MethodGet, "mcp.do", path, "")
		return status
	}
	// The tail starts the worker's tail worker: wait until a request is
	// seen, then measure.
	waitSeen := time.After(20 * time.Second)
	for seen := false; !seen; {
		get("/")
		select {
		case _, open := <-lines:
			if !open {
				t.Fatal("dotdo tail ended")
			}
			seen = true
		case <-time.After(300 * time.Millisecond):
		case <-waitSeen:
			t.Fatal("no tail event for 20 s")
		}
	}
	for _, c := range []struct {
		path, outcome string
		status        int
		check         func(*tail.Event) bool
	}{
		{"/log", "ok", 201, func(e *tail.Event) bool { return len(e.Logs) == 1 && e.Logs[0].Text() == `marker {"from":"e2e"}` }},
		{"/throw", "exception", 500, func(e *tail.Event) bool {
			return len(e.Exceptions) == 1 && e.Exceptions[0].Message == "thrown for the tail" && e.Exceptions[0].Name == "TypeError"
		}},
	} {
		sent := time.Now()
		if got := get(c.path); got != c.status {
			t.Fatalf("%s: status %d", c.path, got)
		}
		var ev tail.Event
		select {
		case line := <-lines:
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", c.path, line, err)
			}
			if !strings.HasSuffix(ev.Event.Request.URL, c.path) || ev.Outcome != c.outcome || ev.ScriptName != "mcp" ||
				ev.Environment != "production" || !c.check(&ev) {
				t.Fatalf("%s: event %s", c.path, line)
			}
			if c.status != 500 && (ev.Event.Response == nil || ev.Event.Response.Status != c.status) {
				t.Fatalf("%s: response status in %s", c.path, line)
			}
			t.Logf("%s: event after %v", c.path, time.Since(sent).Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: no event within 2 s", c.path)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dotdo tail after an interrupt: %v", err)
	}

	wantExit(t, dotdo(t, "", nil, "tail", "--service", "mcp", "--env", "production"), cli.ExitUnauthenticated, "")
	created := ok(t, "keys", "create", "--name", "staging-viewer", "--role", "viewer", "--env", "staging")
	staging := keyRE.FindString(created)
	if staging == "" {
		t.Fatalf("no key in %q", created)
	}
	wantExit(t, dotdo(t, staging, nil, "tail", "--service", "mcp", "--env", "production"), cli.ExitPermissionDenied, "logs.read")
}

// TestTailSlowReader: a tailer that stops reading holds back no request of
// the worker it tails (every request is answered, none waits on the
// tailer), and when it reads again it learns how many events it lost. The
// worker's invocations are counted on the runtime's /metrics.
func TestTailSlowReader(t *testing.T) {
	need(t)
	worker := filepath.Join(t.TempDir(), "worker.js")
	testsupport.WriteFile(t, worker, `export default { fetch(req) {
  // A long line that compression cannot shrink, so that the events
  // outgrow every buffer on the way.
  console.log("random", Array.from({ length: 400 }, () => crypto.randomUUID()).join(""));
  return new Response("ok");
} }`, 0o644)
	ok(t, "deploy", "--service", "queue", "--env", "production", "--file", worker)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A reader with a small socket buffer, as a slow tailer far away has.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
	}}
	client := deployv1connect.NewLogServiceClient(&http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}, platform.apiURL)
	req := connect.NewRequest(&deployv1.TailWorkerRequest{Service: "queue", Environment: "production"})
	req.Header().Set("Authorization", "Bearer "+platform.adminKey)
	stream, err := client.TailWorker(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() || stream.Msg().GetStarted() == nil {
		t.Fatalf("no start: %v", stream.Err())
	}
	// From here the tailer reads nothing while the worker takes traffic.
	get := func() (int, time.Duration) {
		r, _ := http.NewRequest(http.MethodGet, platform.dispURL+"/", nil)
		r.Host = "queue.do"
		start := time.Now()
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, time.Since(start)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, time.Since(start)
	}
	const clients, each = 8, 400
	var mu sync.Mutex
	var slowest time.Duration
	failed := 0
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				code, took := get()
				mu.Lock()
				if code != http.StatusOK {
					failed++
				}
				slowest = max(slowest, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests with a tailer that does not read: %d failed, slowest %v", clients*each, failed, slowest)
	if failed != 0 || slowest > 5*time.Second {
		t.Fatalf("%d requests failed, the slowest took %v: the tailer held the worker back", failed, slowest)
	}
	// Reading again: the loss is reported, and every event is either
	// delivered or counted as dropped.
	msgs := make(chan *deployv1.TailWorkerResponse)
	go func() {
		defer close(msgs)
		for stream.Receive() {
			msgs <- stream.Msg()
		}
	}()
	var dropped, events int64
	for events+dropped < clients*each {
		select {
		case m, open := <-msgs:
			if !open {
				t.Fatalf("the tail ended: %v", stream.Err())
			}
			dropped += m.GetDropped()
			if m.GetEvent() != nil {
				events++
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("after 30 s without a message: %d events, %d dropped, of %d", events, dropped, clients*each)
		}
	}
	t.Logf("the tail delivered %d events and reported %d dropped", events, dropped)
	if dropped == 0 {
		t.Fatal("no event was dropped: the test did not outgrow the buffers")
	}

	families := scrapeMetrics(t, platform.rtURL)
	m := findSeries(t, families, "dotdo_worker_invocations_total", map[string]string{"worker": "queue", "outcome": "ok", "namespace": "dotdo-production"})
	if m.GetCounter().GetValue() < clients*each {
		t.Fatalf("dotdo_worker_invocations_total{worker=queue,outcome=ok} = %v, want at least %d", m.GetCounter().GetValue(), clients*each)
	}
}
