package runtime_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/websocket"
)

// TestWebSocket: an Upgrade request passes through the invocation endpoint
// and the worker's WebSocket works both ways.
func TestWebSocket(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "ws", `export default {
  fetch(req) {
    if (req.headers.get("upgrade") !== "websocket") return new Response("no upgrade", {status: 426});
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (ev) => server.send("echo:" + ev.data));
    return new Response(null, { status: 101, webSocket: client });
  },
}`, nil)
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
