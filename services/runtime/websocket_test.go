package runtime_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/websocket"

	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
)

// TestWebSocket: an Upgrade request passes through the invocation endpoint
// and the worker's WebSocket works both ways.
func TestWebSocket(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "ws", dispatchertest.WebSocketWorker, nil)
	u := strings.Replace(e.invokeURL("ns", "ws", v, "/sock"), "http://", "ws://", 1)
	cfg, _ := websocket.NewConfig(u, "http://localhost/")
	cfg.Header = http.Header{}
	cfg.Header.Set("X-Dotdo-Invoke-Token", invokeToken)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := websocket.Message.Send(ws, "hi"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil {
		t.Fatal(err)
	}
	if got != "echo:hi" {
		t.Fatalf("got %q", got)
	}
}
