package routing_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
)

func loadSuite(t *testing.T) routingtest.Suite {
	t.Helper()
	s, err := routingtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRouterVectors runs the shared vectors on the Go router: the rule,
// worker, status, code and message of every vector (liveness applied as a
// dispatcher applies it).
func TestRouterVectors(t *testing.T) {
	s := loadSuite(t)
	routers := map[string]*routing.Router{}
	for name, tbl := range s.Tables {
		routers[name] = routing.MustCompile(tbl)
	}
	for _, v := range s.Vectors {
		if v.Method == "CONNECT" {
			continue // a transport matter, the dispatcher's (see its vectors test)
		}
		m := routers[v.Table].Route(v.Host, v.Path)
		if m.Miss == routing.MissNone && !s.IsDeployed(m.Worker) {
			m = m.NotLive(s.Environment)
		}
		if v.Worker != "" {
			if m.Miss != routing.MissNone || m.Worker != v.Worker || m.Rule.String() != v.Rule {
				t.Errorf("%s: got %s %q (%s); want %s %q", v, m.Rule, m.Worker, m.Reason, v.Rule, v.Worker)
			}
			continue
		}
		if m.Miss.Status() != v.Status || m.Miss.Code() != v.Code || m.Reason != v.Message {
			t.Errorf("%s: got %d %s %q; want %d %s %q", v, m.Miss.Status(), m.Miss.Code(), m.Reason, v.Status, v.Code, v.Message)
		}
	}
}

// TestWorkerVectors runs the shared vectors on the generated dispatch
// Worker in workerd, with a stand-in for its dispatch namespace.
func TestWorkerVectors(t *testing.T) {
	s := loadSuite(t)
	ran := 0
	for name, tbl := range s.Tables {
		w, err := routing.GenerateWorker(tbl, routing.WorkerOptions{
			Environment: s.Environment, Namespace: s.Namespace, CompatibilityDate: "2025-01-01", TableVersion: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		wd := routingtest.StartWorkerd(t, w, "2025-01-01", s.Deployed)
		for _, v := range s.Vectors {
			if v.Table != name || v.Only == "go" {
				continue
			}
			ran++
			if err := wd.Do(v); err != nil {
				t.Errorf("%s: %v", v, err)
			}
		}
	}
	t.Logf("%d vectors passed on the generated Worker in workerd", ran)
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name, field, reason string
		edit                func(*routing.Table)
	}{
		{"unknown path worker", "path_routes[1].worker", `unknown worker "nope"`, func(t *routing.Table) { t.PathRoutes[1].Worker = "nope" }},
		{"unknown default worker", "default_worker", `unknown worker "web"`, func(t *routing.Table) { t.DefaultWorker = "web" }},
		{"overlapping prefix", "path_routes[8].prefix", `"/api/db/admin" overlaps path_routes[1] ("/api/db") on host "api.do"`, func(t *routing.Table) {
			t.PathRoutes = append(t.PathRoutes, routing.PathRoute{Prefix: "/api/db/admin", Worker: "db", Hosts: []string{"api.do"}})
		}},
		{"same prefix", "path_routes[8].prefix", `overlaps path_routes[0]`, func(t *routing.Table) {
			t.PathRoutes = append(t.PathRoutes, routing.PathRoute{Prefix: "/api/gateway/", Worker: "db", Hosts: []string{"do"}})
		}},
		{"bad domain", "base_domains[1]", `"a..b" is not a domain name`, func(t *routing.Table) { t.BaseDomains = append(t.BaseDomains, "a..b") }},
		{"IP domain", "base_domains[0]", "not a domain name", func(t *routing.Table) { t.BaseDomains = []string{"127.0.0.1"} }},
		{"host outside", "default_hosts[1]", "not a base domain or directly below one", func(t *routing.Table) { t.DefaultHosts[1] = "example.com" }},
		{"host too deep", "path_routes[0].hosts[1]", "not a base domain or directly below one", func(t *routing.Table) { t.PathRoutes[0].Hosts[1] = "x.api.do" }},
		{"root prefix", "path_routes[0].prefix", `"/" would take every path`, func(t *routing.Table) { t.PathRoutes[0].Prefix = "/" }},
		{"dot prefix", "path_routes[0].prefix", "dot segments", func(t *routing.Table) { t.PathRoutes[0].Prefix = "/a/../b" }},
		{"escaped prefix", "path_routes[0].prefix", `'%' is not allowed`, func(t *routing.Table) { t.PathRoutes[0].Prefix = "/a%20b" }},
		{"no hosts", "path_routes[0].hosts", "at least one entry", func(t *routing.Table) { t.PathRoutes[0].Hosts = nil }},
		{"bad worker name", "workers[0]", "not a worker name", func(t *routing.Table) { t.Workers[0] = "Bad_Name" }},
		{"duplicate worker", "workers[8]", "listed twice", func(t *routing.Table) { t.Workers = append(t.Workers, "db") }},
		{"no base domains", "base_domains", "at least one entry", func(t *routing.Table) { t.BaseDomains = nil }},
		{"any worker without subdomains", "subdomains_any_worker", "set subdomains too", func(t *routing.Table) {
			t.Subdomains, t.SubdomainsAnyWorker = false, true
		}},
		{"any worker keeps the list for paths", "path_routes[0].worker", `unknown worker "billing"`, func(t *routing.Table) {
			t.SubdomainsAnyWorker, t.PathRoutes[0].Worker = true, "billing"
		}},
	} {
		tbl := routing.Seed()
		c.edit(&tbl)
		err := tbl.Normalize().Validate()
		var fe *routing.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) || !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: Validate = %v; want %s: ...%s...", c.name, err, c.field, c.reason)
		}
	}
	if err := routing.Seed().Validate(); err != nil {
		t.Fatalf("the seed is invalid: %v", err)
	}
}

func TestParseTable(t *testing.T) {
	in := routing.Seed()
	in.PathRoutes = append(in.PathRoutes, routing.PathRoute{Prefix: "/tools/", Worker: "mcp", Hosts: []string{"API.DO."}})
	got, err := routing.ParseTable(in.MarshalIndent())
	if err != nil {
		t.Fatal(err)
	}
	last := got.PathRoutes[len(got.PathRoutes)-1]
	if last.Prefix != "/tools" || last.Hosts[0] != "api.do" {
		t.Errorf("normalized route = %+v", last)
	}
	if again, err := routing.ParseTable(got.MarshalIndent()); err != nil || !again.Equal(got) {
		t.Errorf("a table does not survive its JSON form: %v", err)
	}
	for _, bad := range []string{`{"base_domains": ["do"], "extra": 1}`, `{} {}`, `[]`, `{"base_domains": ["do"]}`} {
		if _, err := routing.ParseTable([]byte(bad)); !errors.Is(err, errkind.Invalid) {
			t.Errorf("ParseTable(%s) = %v; want Invalid", bad, err)
		}
	}
}

func TestDiff(t *testing.T) {
	a := routing.Seed()
	b := a.Clone()
	b.PathRoutes = append(b.PathRoutes, routing.PathRoute{Prefix: "/tools", Worker: "mcp", Hosts: []string{"do", "api.do"}})
	b.DefaultWorker = "db"
	b.Subdomains = false
	b.SubdomainsAnyWorker = true
	got := strings.Join(routing.Diff(a, b), "\n")
	want := "~ default_worker: gateway -> db\n~ subdomains: true -> false\n~ subdomains_any_worker: false -> true\n+ path_routes: /tools -> mcp on do, api.do"
	if got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
	if d := routing.Diff(a, a.Clone()); d != nil {
		t.Errorf("Diff of equal tables = %q", d)
	}
}

func TestGenerateWorker(t *testing.T) {
	w, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{
		Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01", TableVersion: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	mod := string(w.Module)
	for _, want := range []string{
		"from version 7 of the routing table of\n// environment production (namespace dotdo-production)",
		`const ENVIRONMENT = "production";`, `const TABLE_VERSION = 7;`, `"prefix": "/api/db"`, "function route(",
	} {
		if !strings.Contains(mod, want) {
			t.Errorf("the module lacks %q", want)
		}
	}
	if strings.Contains(mod, `"example"`) {
		t.Error("the module kept the example data")
	}
	if w.ScriptName != "dotdo-dispatcher-production" || strings.Join(w.Routes, " ") != "do/* *.do/*" {
		t.Errorf("script %q routes %q", w.ScriptName, w.Routes)
	}
	for _, want := range []string{`"name": "dotdo-dispatcher-production"`, `"main": "index.js"`, `"binding": "DISPATCHER"`, `"namespace": "dotdo-production"`, `"*.do/*"`} {
		if !strings.Contains(string(w.Config), want) {
			t.Errorf("wrangler.json lacks %s:\n%s", want, w.Config)
		}
	}
	if _, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{Environment: "production", Namespace: "dotdo-production"}); !errors.Is(err, errkind.Invalid) {
		t.Errorf("no compatibility date: %v", err)
	}
	tbl := routing.Seed()
	tbl.Subdomains = false
	tbl.BaseDomains = append(tbl.BaseDomains, "example.com")
	if got := strings.Join(tbl.RoutePatterns(), " "); got != "do/* *.do/* example.com/*" {
		t.Errorf("RoutePatterns = %q", got)
	}
}

// TestGenerateWorkerCrons: the module's CRONS block maps each cron to its
// sorted workers, wrangler.json carries the sorted union as
// triggers.crons, and a bad cron, a bad worker name or more crons than
// Cloudflare allows are errors naming the field.
func TestGenerateWorkerCrons(t *testing.T) {
	o := routing.WorkerOptions{Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01",
		Crons: map[string][]string{"0 3 * * *": {"db"}, "*/5 * * * *": {"gateway", "db", "gateway"}, "1 * * * *": nil}}
	w, err := routing.GenerateWorker(routing.Seed(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(w.Module), "const CRONS = {\n  \"*/5 * * * *\": [\n    \"db\",\n    \"gateway\"\n  ],\n  \"0 3 * * *\": [\n    \"db\"\n  ]\n};\n") {
		t.Errorf("the module's CRONS block:\n%s", w.Module)
	}
	if strings.Join(w.Crons, "|") != "*/5 * * * *|0 3 * * *" {
		t.Errorf("Crons = %q", w.Crons)
	}
	if !strings.Contains(string(w.Config), "\"triggers\": {\n    \"crons\": [\n      \"*/5 * * * *\",\n      \"0 3 * * *\"\n    ]\n  }") {
		t.Errorf("wrangler.json:\n%s", w.Config)
	}
	if w, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01"}); err != nil ||
		!strings.Contains(string(w.Module), "const CRONS = {};") || !strings.Contains(string(w.Config), `"crons": []`) {
		t.Errorf("no crons: %v\n%s\n%s", err, w.Module, w.Config)
	}
	many := map[string][]string{}
	for m := 0; len(many) <= routing.MaxWorkerCrons; m++ {
		many[fmt.Sprintf("%d %d * * *", m%60, m/60)] = []string{"db"}
	}
	for name, crons := range map[string]map[string][]string{
		"a bad cron":   {"61 * * * *": {"db"}},
		"a bad worker": {"* * * * *": {"Bad/Name"}},
		"too many":     many,
	} {
		o.Crons = crons
		if _, err := routing.GenerateWorker(routing.Seed(), o); !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "crons") {
			t.Errorf("%s: %v; want Invalid naming crons", name, err)
		}
	}
	o.Crons = many
	_, err = routing.GenerateWorker(routing.Seed(), o)
	if want := fmt.Sprintf("%d distinct cron triggers, more than the %d", routing.MaxWorkerCrons+1, routing.MaxWorkerCrons); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("too many crons: %v; want %q", err, want)
	}
}
