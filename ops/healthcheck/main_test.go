package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
)

func TestRun(t *testing.T) {
	checker := grpchealth.NewStaticChecker("dotdo.db.v1.DBService")
	mux := http.NewServeMux()
	mux.Handle(grpchealth.NewHandler(checker))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`) // the probe checks what arrives
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusServiceUnavailable) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"grpc serving", []string{srv.URL}, 0},
		{"grpc serving, trailing slash", []string{srv.URL + "/"}, 0},
		{"grpc named service", []string{"-service", "dotdo.db.v1.DBService", srv.URL}, 0},
		{"grpc unknown service", []string{"-service", "nope.v1.Nope", srv.URL}, 1},
		{"http 200", []string{srv.URL + "/healthz"}, 0},
		{"http 503", []string{srv.URL + "/broken"}, 1},
		{"unreachable", []string{"-timeout", "1s", "http://127.0.0.1:1"}, 1},
		{"no url", nil, 2},
		{"not a url", []string{"127.0.0.1:8080"}, 2},
		{"bad flag", []string{"-nope", srv.URL}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(c.args, &stderr); got != c.want {
				t.Errorf("run(%v) = %d, want %d; stderr: %s", c.args, got, c.want, stderr.String())
			}
			if c.want == 0 && stderr.Len() != 0 {
				t.Errorf("healthy run wrote %q", stderr.String())
			}
		})
	}

	// A server going NOT_SERVING is unhealthy.
	checker.SetStatus("", grpchealth.StatusNotServing)
	var stderr bytes.Buffer
	if got := run([]string{srv.URL}, &stderr); got != 1 || !strings.Contains(stderr.String(), "not_serving") {
		t.Errorf("NOT_SERVING: exit %d, stderr %q", got, stderr.String())
	}
}

// TestAgainstPlatformServer probes the platform's own server (h1 and h2c,
// grpchealth mounted by package server), as the containers do.
func TestAgainstPlatformServer(t *testing.T) {
	srv := server.New("probe", server.WithLogger(testsupport.QuietLogger()))
	srv.Handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base := testsupport.Serve(t, srv)
	var stderr bytes.Buffer
	for _, u := range []string{base, base + "/healthz"} {
		// The server may still be starting: retry briefly.
		var code int
		for i := 0; i < 50; i++ {
			stderr.Reset()
			if code = run([]string{u}, &stderr); code == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code != 0 {
			t.Errorf("healthcheck %s: exit %d: %s", u, code, stderr.String())
		}
	}
}
