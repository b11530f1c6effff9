package runtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/tail"
)

// tailStream opens the runtime's tail endpoint for ns/script.
func (e *env) tailStream(ctx context.Context, ns, script string) *bufio.Scanner {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/tail/"+ns+"/"+script, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("tail %s/%s: %d", ns, script, res.StatusCode)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return sc
}

// next reads the next tail message that is not a heartbeat.
func next(t *testing.T, sc *bufio.Scanner) tail.Message {
	t.Helper()
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var m tail.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("tail line %q: %v", sc.Text(), err)
		}
		return m
	}
	t.Fatalf("tail stream ended: %v", sc.Err())
	return tail.Message{}
}

// TestTail: while a script is tailed, each invocation's logs, exceptions,
// status and version reach the tail stream within a second; a request
// past its CPU limit is reported too, though its process could not report
// it; the endpoint needs the API token.
func TestTail(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", `export default { fetch(req) {
  const p = new URL(req.url).pathname;
  console.log("marker", { path: p });
  if (p === "/throw") throw new RangeError("boom for the tail");
  if (p === "/spin") { while (true) {} }
  return new Response("hello", { status: 202 });
} }`, map[string]any{"limits": map[string]any{"cpu_ms": 100}})
	if s, _ := e.invoke("ns", "app", v, "/"); s != 202 { // a process without the tail worker
		t.Fatalf("before tailing: %d", s)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/tail/ns/app", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tail without the token: %v %v", res.StatusCode, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := e.tailStream(ctx, "ns", "app")
	time.Sleep(50 * time.Millisecond)

	begin := time.Now()
	if s, _ := e.invoke("ns", "app", v, "/ok"); s != 202 {
		t.Fatal("ok")
	}
	m := next(t, sc)
	if m.Event == nil || m.Event.Outcome != "ok" || m.Event.Event.Response == nil || m.Event.Event.Response.Status != 202 ||
		len(m.Event.Logs) != 1 || m.Event.Logs[0].Text() != `marker {"path":"/ok"}` || m.Event.ScriptVersion.ID != itoa(int(v)) ||
		m.Event.Event.Request == nil || !strings.HasSuffix(m.Event.Event.Request.URL, "/ok") {
		t.Fatalf("ok event: %+v", m)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("the event took %v", took)
	}
	if s, _ := e.invoke("ns", "app", v, "/throw"); s != 500 {
		t.Fatal("throw")
	}
	m = next(t, sc)
	if m.Event == nil || m.Event.Outcome != "exception" || len(m.Event.Exceptions) != 1 ||
		m.Event.Exceptions[0].Name != "RangeError" || m.Event.Exceptions[0].Message != "boom for the tail" {
		t.Fatalf("exception event: %+v", m.Event)
	}
	if s, _ := e.invoke("ns", "app", v, "/spin"); s != http.StatusServiceUnavailable {
		t.Fatal("spin")
	}
	m = next(t, sc)
	if m.Event == nil || m.Event.Outcome != "exceededCpu" {
		t.Fatalf("exceeded event: %+v", m.Event)
	}
}
