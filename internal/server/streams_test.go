package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/server"
)

// TestUnboundedStreams: a response that streams past the server's write
// timeout is cut off, unless its path is one of WithUnboundedStreams, over
// HTTP/1.1 and unencrypted HTTP/2 alike.
func TestUnboundedStreams(t *testing.T) {
	const chunks, every, timeout = 6, 60 * time.Millisecond, 150 * time.Millisecond
	srv := server.New("test", server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		server.WithWriteTimeout(timeout), server.WithUnboundedStreams("/watch"))
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range chunks {
			if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
			time.Sleep(every)
		}
	})
	srv.Handle("/watch", stream)
	srv.Handle("/bounded", stream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		var p http.Protocols
		if proto == "h2c" {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP1(true)
		}
		client := &http.Client{Transport: &http.Transport{Protocols: &p}}
		for path, whole := range map[string]bool{"/watch": true, "/bounded": false} {
			res, err := client.Get("http://" + ln.Addr().String() + path)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, path, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if got := len(body) == 2*chunks; got != whole {
				t.Errorf("%s %s: got %q; whole response: %v, want %v", proto, path, body, got, whole)
			}
		}
		client.CloseIdleConnections()
	}
}
