package dispatcher_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
)

// standardLive is the live table of the routing tests: schedule is allowed
// but not live, billing is live but not on the seed's allow-list.
func standardLive() map[string]int64 {
	return map[string]int64{"gateway": 3, "db": 5, "auth": 1, "billing": 7}
}

// TestRoute: Route adds the environment, namespace and live version to the
// routing table's match (the rules themselves are the vectors').
func TestRoute(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{}, newFake("production", standardLive()))
	for _, c := range []struct {
		host, path string
		want       dispatcher.Route
	}{
		{"api.do", "/api/db/users", dispatcher.Route{Rule: routing.RulePath, Worker: "db", Version: 5, Path: "/api/db/users"}},
		{"gateway.do", "", dispatcher.Route{Rule: routing.RuleSubdomain, Worker: "gateway", Version: 3, Path: "/"}},
		{"schedule.do", "/", dispatcher.Route{Rule: routing.RuleSubdomain, Worker: "schedule", Path: "/", Miss: routing.MissNotLive,
			Reason: `worker "schedule" has no live version in production`}},
		{"billing.do", "/", dispatcher.Route{Path: "/", Miss: routing.MissUnknownWorker,
			Reason: `no worker "billing" is served here`}},
	} {
		c.want.Environment, c.want.Namespace = "production", "dotdo-production"
		if got := d.Route(c.host, c.path); got != c.want {
			t.Errorf("Route(%q, %q) =\n%+v; want\n%+v", c.host, c.path, got, c.want)
		}
	}
}

func TestRouteBeforeFirstLoad(t *testing.T) {
	d, err := dispatcher.New(dispatcher.Config{InvokeToken: "t", Logger: testsupport.QuietLogger()}, newFake("production", standardLive()))
	if err != nil {
		t.Fatal(err)
	}
	if d.Ready() {
		t.Fatal("Ready before the first load")
	}
	if r := d.Route("gateway.do", "/"); r.Miss != routing.MissNotReady || r.Version != 0 || r.Miss.Status() != 503 {
		t.Errorf("Route before load = %+v; want MissNotReady", r)
	}
	if r := d.Route("gateway..do", "/"); r.Miss != routing.MissBadHost {
		t.Errorf("a malformed host before load = %+v; want MissBadHost", r)
	}
	if !d.RoutesHost("api.do") || d.RoutesHost("127.0.0.1:8787") {
		t.Error("RoutesHost before load does not follow the seed table")
	}
}

func TestResolve(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{}, newFake("production", standardLive()))
	r, err := d.Resolve("https://api.do/api/db/users?limit=1")
	if err != nil || r.Rule != routing.RulePath || r.Worker != "db" || r.Version != 5 || r.Path != "/api/db/users" {
		t.Errorf("Resolve path URL = %+v, %v", r, err)
	}
	r, err = d.Resolve("http://GATEWAY.do:8787/api/%64b/x")
	if err != nil || r.Rule != routing.RuleSubdomain || r.Path != "/api/%64b/x" {
		t.Errorf("Resolve encoded URL = %+v, %v", r, err)
	}
	r, err = d.Resolve("http://do")
	if err != nil || r.Rule != routing.RuleDefault || r.Path != "/" {
		t.Errorf("Resolve bare host = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "gateway.do/x", "/x", "ftp://gateway.do/", "http:///x", "mailto:a@b", "http://[::1/", "http://a b/"} {
		if _, err := d.Resolve(bad); !errors.Is(err, dispatcher.ErrInvalidURL) {
			t.Errorf("Resolve(%q) error = %v; want ErrInvalidURL", bad, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	src := newFake("production", nil)
	for name, cfg := range map[string]dispatcher.Config{
		"no token":               {},
		"bad namespace":          {InvokeToken: "t", Namespace: "a/b"},
		"runtime URL scheme":     {InvokeToken: "t", RuntimeURL: "ftp://127.0.0.1:8790"},
		"runtime URL query":      {InvokeToken: "t", RuntimeURL: "http://127.0.0.1:8790/?a=b"},
		"runtime URL escaping":   {InvokeToken: "t", RuntimeURL: "http://127.0.0.1:8790/a%20b"},
		"negative backoff":       {InvokeToken: "t", WatchBackoff: -1},
		"negative header budget": {InvokeToken: "t", MaxHeaderBytes: -1},
	} {
		if _, err := dispatcher.New(cfg, src); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := dispatcher.New(dispatcher.Config{InvokeToken: "t"}, nil); err == nil {
		t.Error("New accepted a nil source")
	}
	d, err := dispatcher.New(dispatcher.Config{InvokeToken: "t", Environment: "staging"}, src)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Config()
	if c.Namespace != "dotdo-staging" || c.RuntimeURL != "http://127.0.0.1:8790" || c.WatchBackoff != dispatcher.DefaultWatchBackoff || c.InvokeToken != "" {
		t.Errorf("defaults: %+v", c)
	}
}

// TestRefresh: Refresh loads one snapshot; a failing source fails it and
// keeps the last state.
func TestRefresh(t *testing.T) {
	src := newFake("production", map[string]int64{"gateway": 1, "db": 2, "auth": 3, "mcp": 4, "queue": 5})
	d := newDispatcher(t, dispatcher.Config{}, src)
	live, loaded := d.LiveVersions()
	if len(live) != 5 || live["queue"].Version != 5 || live["queue"].Namespace != "dotdo-production" || loaded.IsZero() {
		t.Fatalf("LiveVersions after a load = %+v", live)
	}
	src.mu.Lock()
	src.live["gateway"] = 2
	src.mu.Unlock()
	src.fail(errors.New("db down"))
	if err := d.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded against a failing source")
	}
	if r := d.Route("gateway.do", "/"); r.Version != 1 {
		t.Fatalf("after a failed refresh, gateway version %d; want the last state's 1", r.Version)
	}
	src.fail(nil)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := d.Route("gateway.do", "/"); r.Version != 2 {
		t.Fatalf("after a refresh, gateway version %d; want 2", r.Version)
	}
}

// FuzzRoute checks that no host or path makes the dispatcher's routing
// panic, and that a forwarded route always names a live worker (the
// routing table's own fuzz target is internal/routing's FuzzRoute).
func FuzzRoute(f *testing.F) {
	for _, s := range [][2]string{
		{"gateway.do", "/"}, {"api.do", "/api/db/x"}, {"[::1]:80", "/"}, {"do.", "/api//db"},
		{"xn--bcher-kva.do", "/%2e%2E"}, {"", ""}, {"[", "*"}, {"a..do:", "/api/"}, {".", "."},
	} {
		f.Add(s[0], s[1])
	}
	d := newDispatcher(f, dispatcher.Config{}, newFake("production", standardLive()))
	f.Fuzz(func(t *testing.T, host, path string) {
		r := d.Route(host, path)
		if r.Miss == routing.MissNone && (r.Worker == "" || r.Version <= 0 || r.Rule == routing.RuleNone) {
			t.Fatalf("Route(%q, %q) forwards to %+v", host, path, r)
		}
		_, _ = d.Resolve("http://" + host + path)
	})
}
