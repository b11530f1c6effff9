package testsupport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
)

func TestLogBufferConcurrentWriters(t *testing.T) {
	var logs testsupport.LogBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			testsupport.QuietLogger().Info("dropped")
			if _, err := fmt.Fprintf(&logs, "line %d\n", i); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := logs.Count("line "); n != 8 {
		t.Errorf("Count = %d, want 8 in %q", n, logs.String())
	}
}

func TestServe(t *testing.T) {
	stopped := make(chan struct{})
	t.Cleanup(func() {
		// Cleanups run last in, first out: Serve's, registered below, has
		// stopped the server by now.
		select {
		case <-stopped:
		default:
			t.Error("the server was not stopped at cleanup")
		}
	})
	base := testsupport.Serve(t, testsupport.ServeFunc(func(ctx context.Context, ln net.Listener) error {
		defer close(stopped)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		})}
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}), testsupport.CloseIdle(http.DefaultClient))
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, err := io.ReadAll(res.Body); err != nil || string(b) != "ok" {
		t.Fatalf("GET / = %q, %v", b, err)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := testsupport.FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the free address %s: %v", addr, err)
	}
	_ = ln.Close() // only probing
}
