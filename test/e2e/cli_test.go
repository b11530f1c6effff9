package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/cli"
	"github.com/dot-do/platform/internal/testsupport"
)

var keyRE = regexp.MustCompile(`dotdo_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}`)

// writeWorker writes an ES module answering label and returns its path.
func writeWorker(t *testing.T, label string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.js")
	testsupport.WriteFile(t, p, `export default { fetch(req) { return new Response("`+label+` " + new URL(req.url).pathname) } }`, 0o644)
	return p
}

func wantExit(t *testing.T, r result, code int, stderrHas string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if stderrHas != "" && !strings.Contains(r.stderr, stderrHas) {
		t.Fatalf("stderr %q does not say %q", r.stderr, stderrHas)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 && code != 0 {
		t.Fatalf("error is not one line: %q", r.stderr)
	}
}

func TestCLIDeployRollbackDeployments(t *testing.T) {
	need(t)
	out := ok(t, "deploy", "--service", "cli-worker", "--env", "production", "--file", writeWorker(t, "one"))
	if !strings.Contains(out, "version 1: live") || !strings.Contains(out, "url: ") {
		t.Fatalf("deploy printed %q", out)
	}
	// Multi-module, with GitHub Actions metadata.
	dir := t.TempDir()
	testsupport.WriteFile(t, filepath.Join(dir, "index.js"), `import { label } from "./lib/label.js"; export default { fetch() { return new Response(label) } }`, 0o644)
	testsupport.WriteFile(t, filepath.Join(dir, "lib", "label.js"), `export const label = "two";`, 0o644)
	r := dotdo(t, platform.adminKey, []string{"GITHUB_SHA=cafef00d", "GITHUB_REF_NAME=main", "GITHUB_ACTOR=octocat"},
		"deploy", "--service", "cli-worker", "--env", "production", "--dir", dir)
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "version 2: live") {
		t.Fatalf("deploy --dir printed %q", r.stdout)
	}
	out = ok(t, "rollback", "--service", "cli-worker", "--env", "production")
	if !strings.Contains(out, "version 3: live, restoring version 1") {
		t.Fatalf("rollback printed %q", out)
	}
	table := ok(t, "deployments", "--service", "cli-worker")
	for _, want := range []string{"SERVICE", "rollback->v1", "cafef00d", "superseded"} {
		if !strings.Contains(table, want) {
			t.Fatalf("deployments table lacks %q:\n%s", want, table)
		}
	}
	var list struct {
		Deployments []struct {
			Version  string `json:"version"`
			Status   string `json:"status"`
			Metadata struct {
				Author string `json:"author"`
			} `json:"metadata"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(ok(t, "deployments", "--service", "cli-worker", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Deployments) != 3 || list.Deployments[0].Status != "DEPLOYMENT_STATUS_LIVE" || list.Deployments[1].Metadata.Author != "octocat" {
		t.Fatalf("deployments json = %+v", list)
	}
}

func TestCLIFailures(t *testing.T) {
	need(t)
	file := writeWorker(t, "x")
	// No key, a malformed key, a revoked-looking unknown key: 3.
	wantExit(t, dotdo(t, "", nil, "deployments"), cli.ExitUnauthenticated, "unauthenticated")
	wantExit(t, dotdo(t, "dotdo_nope", nil, "deploy", "--service", "x", "--file", file), cli.ExitUnauthenticated, "unauthenticated")
	// Unknown version: 5; nothing to roll back to: 6.
	ok(t, "deploy", "--service", "once", "--file", file)
	wantExit(t, dotdo(t, platform.adminKey, nil, "rollback", "--service", "once", "--version", "99"), cli.ExitNotFound, "not_found")
	wantExit(t, dotdo(t, platform.adminKey, nil, "rollback", "--service", "never-deployed"), cli.ExitInvalid, "nothing")
	// Bad input: 6, naming the field.
	wantExit(t, dotdo(t, platform.adminKey, nil, "deploy", "--service", "Bad Name", "--file", file), cli.ExitInvalid, "service")
	wantExit(t, dotdo(t, platform.adminKey, nil, "deploy", "--service", "x", "--env", "mars", "--file", file), cli.ExitInvalid, "environment")
	// Usage: 2.
	wantExit(t, dotdo(t, platform.adminKey, nil, "deploy", "--service", "x"), cli.ExitUsage, "--file or --dir")
	wantExit(t, dotdo(t, platform.adminKey, nil, "frobnicate"), cli.ExitUsage, "unknown command")
	// Unreachable server: 7.
	wantExit(t, dotdo(t, platform.adminKey, []string{"DOTDO_API_URL=http://127.0.0.1:1"}, "deployments"), cli.ExitUnavailable, "unavailable")
	// A viewer cannot deploy: 4.
	out := ok(t, "keys", "create", "--name", "viewer", "--role", "viewer")
	viewer := keyRE.FindString(out)
	if viewer == "" {
		t.Fatalf("keys create printed no key: %q", out)
	}
	wantExit(t, dotdo(t, viewer, nil, "deploy", "--service", "x", "--file", file), cli.ExitPermissionDenied, "deployments.create")
	wantExit(t, dotdo(t, viewer, nil, "deployments"), 0, "")
	// A script the runtime refuses to start: recorded as failed, 6.
	bad := filepath.Join(t.TempDir(), "bad.js")
	testsupport.WriteFile(t, bad, `throw new Error("boom at top level");`, 0o644)
	r := dotdo(t, platform.adminKey, nil, "deploy", "--service", "throws", "--file", bad)
	if r.code == 0 || !strings.Contains(r.stderr, "boom at top level") {
		t.Fatalf("deploy of a throwing worker: exit %d, %q", r.code, r.stderr)
	}
}

func TestCLIKeys(t *testing.T) {
	need(t)
	out := ok(t, "keys", "create", "--name", "ci", "--role", "deployer", "--env", "staging", "--ttl", "720h")
	key := keyRE.FindString(out)
	id := key[len("dotdo_") : len("dotdo_")+12]
	if list := ok(t, "keys", "list"); !strings.Contains(list, id) || !strings.Contains(list, "staging") {
		t.Fatalf("keys list lacks %s:\n%s", id, list)
	}
	out = ok(t, "keys", "rotate", id, "--grace", "1h")
	rotated := keyRE.FindString(out)
	if rotated == "" || rotated == key || !strings.Contains(out, "the old key "+id+" works until") {
		t.Fatalf("keys rotate printed %q", out)
	}
	// Both work during the grace period; the old one stops on revocation.
	wantExit(t, dotdo(t, key, nil, "deployments", "--env", "staging"), 0, "")
	wantExit(t, dotdo(t, rotated, nil, "deployments", "--env", "staging"), 0, "")
	ok(t, "keys", "revoke", id)
	time.Sleep(10*time.Second + 500*time.Millisecond) // the auth cache's revocation bound
	wantExit(t, dotdo(t, key, nil, "deployments"), cli.ExitUnauthenticated, "")
	// Bootstrap is refused once an admin exists.
	r := dotdo(t, "", []string{"DOTDO_DATA_DIR=" + platform.dataDir}, "keys", "bootstrap")
	wantExit(t, r, cli.ExitInvalid, "admin key already exists")
}

func TestCLINamespacesRoutesAudit(t *testing.T) {
	need(t)
	out := ok(t, "namespaces", "ensure")
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "production dotdo-production exists") {
		t.Fatalf("namespaces ensure printed %q", out)
	}
	if out = ok(t, "namespaces", "list"); !strings.Contains(out, "dotdo-staging") {
		t.Fatalf("namespaces list printed %q", out)
	}
	ok(t, "deploy", "--service", "db", "--file", writeWorker(t, "db"))
	// The db service pushes the new live version to the dispatcher.
	for start := time.Now(); time.Since(start) < 2*time.Second; time.Sleep(10 * time.Millisecond) {
		if out = ok(t, "routes", "resolve", "https://api.do/api/db/users"); !strings.Contains(out, "has no live version") {
			break
		}
	}
	for _, want := range []string{"worker       db", "rule         path", "namespace    dotdo-production"} {
		if !strings.Contains(out, want) {
			t.Fatalf("routes resolve lacks %q:\n%s", want, out)
		}
	}
	if out = ok(t, "routes", "resolve", "https://nowhere.example/"); !strings.Contains(out, "no route") {
		t.Fatalf("routes resolve of a foreign host printed %q", out)
	}
	if out = ok(t, "audit", "list", "--limit", "5"); !strings.Contains(out, "deployment.create") {
		t.Fatalf("audit list printed %q", out)
	}
	if out = ok(t, "audit", "verify"); !strings.Contains(out, "audit trail intact") {
		t.Fatalf("audit verify printed %q", out)
	}
}
