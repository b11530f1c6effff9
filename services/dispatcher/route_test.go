package dispatcher_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
)

// standardLive is the live table of the routing tests: schedule is allowed
// but not live, billing is live but not on the default allow-list.
func standardLive() map[string]int64 {
	return map[string]int64{"gateway": 3, "db": 5, "auth": 1, "billing": 7}
}

type routeCase struct {
	host, path string
	rule       dispatcher.Rule
	worker     string
	version    int64
	miss       dispatcher.Miss
}

func checkRoutes(t *testing.T, d *dispatcher.Dispatcher, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		got := d.Route(c.host, c.path)
		if got.Rule != c.rule || got.Worker != c.worker || got.Version != c.version || got.Miss != c.miss {
			t.Errorf("Route(%q, %q) = rule %v worker %q version %d miss %d (%s); want rule %v worker %q version %d miss %d",
				c.host, c.path, got.Rule, got.Worker, got.Version, got.Miss, got.Reason, c.rule, c.worker, c.version, c.miss)
			continue
		}
		if (got.Miss == dispatcher.MissNone) != (got.Reason == "") {
			t.Errorf("Route(%q, %q): miss %d with reason %q", c.host, c.path, got.Miss, got.Reason)
		}
		if got.Miss != dispatcher.MissBadHost && got.Miss != dispatcher.MissBadPath && got.Path != c.path && (c.path != "" || got.Path != "/") {
			t.Errorf("Route(%q, %q): worker would see path %q; want the path as sent", c.host, c.path, got.Path)
		}
		if got.Environment != "production" || (got.Miss == dispatcher.MissNone && got.Namespace != "dotdo-production") {
			t.Errorf("Route(%q, %q): environment %q namespace %q", c.host, c.path, got.Environment, got.Namespace)
		}
	}
}

const (
	sub  = dispatcher.RuleSubdomain
	path = dispatcher.RulePath
	def  = dispatcher.RuleDefault
	none = dispatcher.RuleNone
)

func TestRouteDefaultConfig(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{}, newFake("production", standardLive()))
	checkRoutes(t, d, []routeCase{
		// Subdomain.
		{"gateway.do", "/", sub, "gateway", 3, 0},
		{"db.do", "/users", sub, "db", 5, 0},
		{"auth.do", "/login?x", sub, "auth", 1, 0},        // a path with '?' is just a path here
		{"gateway.do", "/api/db/x", sub, "gateway", 3, 0}, // the subdomain wins over the path
		{"GATEWAY.DO", "/", sub, "gateway", 3, 0},
		{"Gateway.Do:8787", "/", sub, "gateway", 3, 0},
		{"gateway.do.", "/", sub, "gateway", 3, 0},
		{"gateway.do.:443", "/", sub, "gateway", 3, 0},
		{"gateway.do:", "/", sub, "gateway", 3, 0},
		{"schedule.do", "/", sub, "schedule", 0, dispatcher.MissNotLive},
		{"billing.do", "/", none, "", 0, dispatcher.MissUnknownWorker}, // live, but not on the allow-list
		{"unknown.do", "/", none, "", 0, dispatcher.MissUnknownWorker},
		{"xn--bcher-kva.do", "/", none, "", 0, dispatcher.MissUnknownWorker}, // punycode is an ordinary label
		{"XN--BCHER-KVA.DO", "/", none, "", 0, dispatcher.MissUnknownWorker},
		// Path, on the default hosts only.
		{"api.do", "/api/db/users", path, "db", 5, 0},
		{"api.do", "/api/db", path, "db", 5, 0},
		{"api.do", "/api/db/", path, "db", 5, 0},
		{"do", "/api/auth/login", path, "auth", 1, 0},
		{"API.DO:443", "/api/db/x", path, "db", 5, 0},
		{"api.do.", "/api/db/x", path, "db", 5, 0},
		{"api.do", "/api/gateway/x", path, "gateway", 3, 0},
		{"api.do", "/api/schedule/jobs", path, "schedule", 0, dispatcher.MissNotLive},
		// Path edges that fall back to the default worker.
		{"api.do", "/api/", def, "gateway", 3, 0},
		{"api.do", "/api", def, "gateway", 3, 0},
		{"api.do", "/api//db", def, "gateway", 3, 0},
		{"api.do", "/api//db/x", def, "gateway", 3, 0},
		{"api.do", "/api/dbx", def, "gateway", 3, 0},
		{"api.do", "/api/DB/x", def, "gateway", 3, 0},
		{"api.do", "/API/db/x", def, "gateway", 3, 0},
		{"api.do", "/api/%64b/x", def, "gateway", 3, 0},    // no decoding: the worker would see %64b
		{"api.do", "/api/db%2Fx", def, "gateway", 3, 0},    // an encoded slash is not a separator
		{"api.do", "/api/billing/x", def, "gateway", 3, 0}, // not allowed: the default worker decides
		{"api.do", "/xapi/db/x", def, "gateway", 3, 0},
		{"api.do", "/v1/api/db/x", def, "gateway", 3, 0},
		{"api.do", "/api/db/.hidden", path, "db", 5, 0},
		{"api.do", "/api/db/...", path, "db", 5, 0},
		// Default.
		{"do", "/", def, "gateway", 3, 0},
		{"do", "", def, "gateway", 3, 0},
		{"DO.", "/", def, "gateway", 3, 0},
		{"do:8080", "/x", def, "gateway", 3, 0},
		{"api.do", "/", def, "gateway", 3, 0},
		{"api.do", "/anything/else", def, "gateway", 3, 0},
		// Hosts no rule routes.
		{"a.gateway.do", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"x.api.do", "/api/db/x", none, "", 0, dispatcher.MissUnknownHost},
		{"gateway.example.com", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"example.com", "/api/db/x", none, "", 0, dispatcher.MissUnknownHost},
		{"dodo", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"gateway.dodo", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"do.example", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"localhost:8787", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"127.0.0.1", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"127.0.0.1:8787", "/api/db/x", none, "", 0, dispatcher.MissUnknownHost},
		{"[::1]", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"[::1]:8787", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"[2001:DB8::1]:80", "/", none, "", 0, dispatcher.MissUnknownHost},
		{"[::ffff:127.0.0.1]", "/", none, "", 0, dispatcher.MissUnknownHost},
		// Malformed hosts.
		{"", "/", none, "", 0, dispatcher.MissBadHost},
		{"::1", "/", none, "", 0, dispatcher.MissBadHost},
		{"[::1", "/", none, "", 0, dispatcher.MissBadHost},
		{"[::1]x", "/", none, "", 0, dispatcher.MissBadHost},
		{"[::1]:99999", "/", none, "", 0, dispatcher.MissBadHost},
		{"[127.0.0.1]", "/", none, "", 0, dispatcher.MissBadHost},
		{"[gateway.do]", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway.do:abc", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway.do:99999", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway.do:80:80", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway..do", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway.do..", "/", none, "", 0, dispatcher.MissBadHost},
		{".do", "/", none, "", 0, dispatcher.MissBadHost},
		{".", "/", none, "", 0, dispatcher.MissBadHost},
		{"gate way.do", "/", none, "", 0, dispatcher.MissBadHost},
		{"gateway.do/x", "/", none, "", 0, dispatcher.MissBadHost},
		{"user@gateway.do", "/", none, "", 0, dispatcher.MissBadHost},
		{"bücher.do", "/", none, "", 0, dispatcher.MissBadHost}, // non-ASCII: punycode is expected
		{"1.2.3.999", "/", none, "", 0, dispatcher.MissBadHost},
		{"123", "/", none, "", 0, dispatcher.MissBadHost},
		{strings.Repeat("a", 64) + ".do", "/", none, "", 0, dispatcher.MissBadHost},
		{strings.Repeat("a.", 127) + "do", "/", none, "", 0, dispatcher.MissBadHost},
		// Malformed paths.
		{"gateway.do", "*", none, "", 0, dispatcher.MissBadPath},
		{"gateway.do", "x", none, "", 0, dispatcher.MissBadPath},
		{"api.do", "/api/db/../auth/x", none, "", 0, dispatcher.MissBadPath},
		{"api.do", "/api/db/%2e%2E/auth", none, "", 0, dispatcher.MissBadPath},
		{"api.do", "/api/db/.%2e", none, "", 0, dispatcher.MissBadPath},
		{"api.do", "/./api/db", none, "", 0, dispatcher.MissBadPath},
		{"gateway.do", "/x/..", none, "", 0, dispatcher.MissBadPath},
		{"api.do", `/api\db/x`, none, "", 0, dispatcher.MissBadPath},
	})
}

func TestRouteConfiguredDomains(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{
		BaseDomains: []string{"do", "Example.COM.", "bücher.example"},
		Workers:     []string{"gateway", "db"},
	}, newFake("production", standardLive()))
	checkRoutes(t, d, []routeCase{
		{"gateway.example.com", "/", sub, "gateway", 3, 0},
		{"example.com", "/api/db/x", path, "db", 5, 0},
		{"api.example.com", "/", def, "gateway", 3, 0},
		{"db.xn--bcher-kva.example", "/", sub, "db", 5, 0},
		{"xn--bcher-kva.example", "/api/db", path, "db", 5, 0},
		{"auth.do", "/", none, "", 0, dispatcher.MissUnknownWorker}, // not on this allow-list
		{"api.do", "/api/auth/x", def, "gateway", 3, 0},
	})
}

func TestRouteAnyWorker(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{AnyWorker: true}, newFake("production", standardLive()))
	checkRoutes(t, d, []routeCase{
		{"billing.do", "/", sub, "billing", 7, 0},
		{"api.do", "/api/billing/x", path, "billing", 7, 0},
		{"schedule.do", "/", none, "", 0, dispatcher.MissUnknownWorker}, // not live, so unknown
		{"api.do", "/api/schedule/x", def, "gateway", 3, 0},
	})
}

func TestRouteBeforeFirstLoad(t *testing.T) {
	for _, anyWorker := range []bool{false, true} {
		d, err := dispatcher.New(dispatcher.Config{InvokeToken: "t", AnyWorker: anyWorker, Logger: testsupport.QuietLogger()}, newFake("production", standardLive()))
		if err != nil {
			t.Fatal(err)
		}
		if d.Ready() {
			t.Fatal("Ready before the first load")
		}
		r := d.Route("gateway.do", "/")
		if r.Miss != dispatcher.MissNotReady || r.Version != 0 {
			t.Errorf("AnyWorker=%v: Route before load = %+v; want MissNotReady", anyWorker, r)
		}
		if r := d.Route("gateway..do", "/"); r.Miss != dispatcher.MissBadHost {
			t.Errorf("AnyWorker=%v: a malformed host before load = %+v; want MissBadHost", anyWorker, r)
		}
	}
}

func TestResolve(t *testing.T) {
	d := newDispatcher(t, dispatcher.Config{}, newFake("production", standardLive()))
	r, err := d.Resolve("https://api.do/api/db/users?limit=1")
	if err != nil || r.Rule != dispatcher.RulePath || r.Worker != "db" || r.Version != 5 || r.Path != "/api/db/users" {
		t.Errorf("Resolve path URL = %+v, %v", r, err)
	}
	r, err = d.Resolve("http://GATEWAY.do:8787/api/%64b/x")
	if err != nil || r.Rule != dispatcher.RuleSubdomain || r.Path != "/api/%64b/x" {
		t.Errorf("Resolve encoded URL = %+v, %v", r, err)
	}
	r, err = d.Resolve("http://do")
	if err != nil || r.Rule != dispatcher.RuleDefault || r.Path != "/" {
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
		"default not allowed":    {InvokeToken: "t", Workers: []string{"db"}},
		"bad worker":             {InvokeToken: "t", Workers: []string{"gateway", "Bad/Name"}},
		"bad namespace":          {InvokeToken: "t", Namespace: "a/b"},
		"IP base domain":         {InvokeToken: "t", BaseDomains: []string{"127.0.0.1"}},
		"bad base domain":        {InvokeToken: "t", BaseDomains: []string{"a..b"}},
		"runtime URL scheme":     {InvokeToken: "t", RuntimeURL: "ftp://127.0.0.1:8790"},
		"runtime URL query":      {InvokeToken: "t", RuntimeURL: "http://127.0.0.1:8790/?a=b"},
		"runtime URL escaping":   {InvokeToken: "t", RuntimeURL: "http://127.0.0.1:8790/a%20b"},
		"negative interval":      {InvokeToken: "t", RefreshInterval: -1},
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
	if c.Namespace != "dotdo-staging" || c.DefaultWorker != "gateway" || c.RuntimeURL != "http://127.0.0.1:8790" ||
		len(c.BaseDomains) != 1 || c.BaseDomains[0] != "do" || len(c.Workers) != 8 || c.RefreshInterval != dispatcher.DefaultRefreshInterval {
		t.Errorf("defaults: %+v", c)
	}
}

// TestRefresh covers pagination, failures keeping the last table, and the
// table swap.
func TestRefresh(t *testing.T) {
	src := newFake("production", map[string]int64{"gateway": 1, "db": 2, "auth": 3, "mcp": 4, "queue": 5})
	d := newDispatcher(t, dispatcher.Config{}, src)
	live, loaded := d.LiveVersions()
	if len(live) != 5 || live["queue"].Version != 5 || live["queue"].Namespace != "dotdo-production" || loaded.IsZero() {
		t.Fatalf("LiveVersions after a paginated load = %+v", live)
	}
	src.set("gateway", 2)
	src.fail(errors.New("db down"))
	if err := d.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded against a failing source")
	}
	if r := d.Route("gateway.do", "/"); r.Version != 1 {
		t.Fatalf("after a failed refresh, gateway version %d; want the last table's 1", r.Version)
	}
	src.fail(nil)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := d.Route("gateway.do", "/"); r.Version != 2 {
		t.Fatalf("after a refresh, gateway version %d; want 2", r.Version)
	}
}

// FuzzRoute checks that no host or path makes routing panic, and that a
// forwarded route always names a live worker.
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
		if r.Miss == dispatcher.MissNone && (r.Worker == "" || r.Version <= 0 || r.Rule == dispatcher.RuleNone) {
			t.Fatalf("Route(%q, %q) forwards to %+v", host, path, r)
		}
		_, _ = d.Resolve("http://" + host + path)
	})
}
