package routing_test

import (
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
)

// FuzzRoute routes arbitrary Host headers and paths with the seed table and
// the vectors' custom and any (subdomains_any_worker) tables. Its seed corpus is in testdata/fuzz/FuzzRoute;
// `make test` runs it briefly (see the Makefile's fuzz target). No input
// may panic, and every answer must be well formed: a forwarded request
// names a worker of the allow-list (or, by subdomain with
// subdomains_any_worker, a worker name) and the path as sent, a refused one a
// status, code and message; routing is deterministic and ASCII
// case-insensitive in the host.
func FuzzRoute(f *testing.F) {
	s, err := routingtest.Load()
	if err != nil {
		f.Fatal(err)
	}
	routers := []*routing.Router{routing.MustCompile(routing.Seed()), routing.MustCompile(s.Tables["custom"]), routing.MustCompile(s.Tables["any"])}
	picks := func(r *routing.Router, m routing.Match) bool {
		return r.Allowed(m.Worker) || (m.Rule == routing.RuleSubdomain && r.Table().SubdomainsAnyWorker && names.ValidService(m.Worker))
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		for _, r := range routers {
			m := r.Route(host, path)
			want := path
			if want == "" {
				want = "/"
			}
			switch {
			case m.Path != want:
				t.Fatalf("Route(%q, %q).Path = %q", host, path, m.Path)
			case m.Miss == routing.MissNone && (m.Rule == routing.RuleNone || !picks(r, m) || m.Reason != ""):
				t.Fatalf("Route(%q, %q) forwards to %+v", host, path, m)
			case m.Miss != routing.MissNone && (m.Rule != routing.RuleNone || m.Worker != "" || m.Reason == "" || m.Miss.Code() == "" || m.Miss.Status() < 400):
				t.Fatalf("Route(%q, %q) refuses with %+v", host, path, m)
			}
			if again := r.Route(host, path); again != m {
				t.Fatalf("Route(%q, %q) is not deterministic: %+v then %+v", host, path, m, again)
			}
			if up := r.Route(strings.ToUpper(host), path); up.Miss != m.Miss || up.Worker != m.Worker {
				t.Fatalf("Route(%q) = %+v but Route(%q) = %+v", host, m, strings.ToUpper(host), up)
			}
			if m.Miss == routing.MissNone && !r.RoutesHost(host) {
				t.Fatalf("Route(%q, %q) forwards, but RoutesHost(%q) is false", host, path, host)
			}
		}
	})
}
