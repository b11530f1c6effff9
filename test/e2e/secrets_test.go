package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/cli"
	"github.com/dot-do/platform/internal/testsupport"
)

// writeSecretWorker writes a worker answering label and its WEBHOOK_TOKEN
// secret, and returns its path.
func writeSecretWorker(t *testing.T, label string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.js")
	testsupport.WriteFile(t, p, `export default { fetch(req, env) { return new Response("`+label+` token=" + (env.WEBHOOK_TOKEN ?? "unset")) } }`, 0o644)
	return p
}

// secretPut runs `dotdo secret put` with value on stdin.
func secretPut(t *testing.T, key, name, value string, extra ...string) result {
	t.Helper()
	args := append([]string{"secret", "put", name, "--service", "webhooks", "--env", "production"}, extra...)
	return dotdoStdin(t, key, nil, strings.NewReader(value), args...)
}

// holdsNowhere fails t when a file under dir holds needle.
func holdsNowhere(t *testing.T, dir, needle string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // a file removed while walking, a socket
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		n++
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s holds the secret's value", path)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walked %d files of %s: %v", n, dir, err)
	}
}

// TestCLISecrets is issue 14's secrets acceptance through the real binary:
// a secret put with `dotdo secret put` reaches the worker through the
// dispatcher, survives a redeploy and a rollback, is listed by name only,
// can be read by a viewer but not set, and is gone after delete; bad
// input is refused naming the field; and its value is nowhere in the data
// directory (database, runtime store, sealed file), the platform's log or
// the audit list.
func TestCLISecrets(t *testing.T) {
	need(t)
	const marker = "e2e-secret-marker-c0ffee5"
	const host = "webhooks.do"

	// Help, and a worker that was never deployed.
	r := dotdo(t, platform.adminKey, nil, "secret", "put", "--help")
	wantExit(t, r, 0, "usage: dotdo secret put NAME")
	wantExit(t, dotdo(t, platform.adminKey, nil, "secret", "--help"), 0, "")
	wantExit(t, secretPut(t, platform.adminKey, "WEBHOOK_TOKEN", marker), cli.ExitInvalid, "deploy it first")

	ok(t, "deploy", "--service", "webhooks", "--env", "production", "--file", writeSecretWorker(t, "one"))
	until(t, host, "/", "one token=unset", 10*time.Second)
	r = secretPut(t, platform.adminKey, "WEBHOOK_TOKEN", marker+"\n") // as `echo $X | dotdo secret put` sends it
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "secret WEBHOOK_TOKEN of webhooks in production created") {
		t.Fatalf("put printed %q", r.stdout)
	}
	until(t, host, "/", "one token="+marker, 10*time.Second)
	if got := through(t, host, "/"); got != "one token="+marker {
		t.Fatalf("the trailing newline was kept: %q", got)
	}

	// Redeploy and rollback keep it.
	ok(t, "deploy", "--service", "webhooks", "--env", "production", "--file", writeSecretWorker(t, "two"))
	until(t, host, "/", "two token="+marker, 10*time.Second)
	ok(t, "rollback", "--service", "webhooks", "--env", "production")
	until(t, host, "/", "one token="+marker, 10*time.Second)

	// A new value reaches new requests.
	wantExit(t, secretPut(t, platform.adminKey, "WEBHOOK_TOKEN", "rotated-"+marker), 0, "")
	until(t, host, "/", "one token=rotated-"+marker, 10*time.Second)

	// Listed by name and time, never by value; a viewer may list, not put.
	viewer := keyRE.FindString(ok(t, "keys", "create", "--name", "secret-viewer", "--role", "viewer"))
	r = dotdo(t, viewer, nil, "secret", "list", "--service", "webhooks", "--env", "production")
	wantExit(t, r, 0, "")
	if !strings.Contains(r.stdout, "WEBHOOK_TOKEN") || strings.Contains(r.stdout, marker) {
		t.Fatalf("list printed %q", r.stdout)
	}
	var list struct {
		Secrets []struct {
			Name      string `json:"name"`
			UpdatedAt string `json:"updatedAt"`
		} `json:"secrets"`
	}
	out := ok(t, "secret", "list", "--service", "webhooks", "--env", "production", "--output", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Secrets) != 1 || list.Secrets[0].Name != "WEBHOOK_TOKEN" || list.Secrets[0].UpdatedAt == "" || strings.Contains(out, marker) {
		t.Fatalf("list json %q: %+v %v", out, list, err)
	}
	wantExit(t, secretPut(t, viewer, "WEBHOOK_TOKEN", "viewer-value"), cli.ExitPermissionDenied, "secrets.write")

	// Bad input: refused naming the field, nothing changed.
	wantExit(t, secretPut(t, platform.adminKey, "1BAD", "v"), cli.ExitInvalid, "name")
	wantExit(t, secretPut(t, platform.adminKey, "BAD-NAME", "v"), cli.ExitInvalid, "not a valid secret name")
	wantExit(t, secretPut(t, platform.adminKey, "EMPTY", ""), cli.ExitInvalid, "value")
	wantExit(t, secretPut(t, platform.adminKey, "BIG", strings.Repeat("x", 5121)), cli.ExitInvalid, "value")
	wantExit(t, secretPut(t, platform.adminKey, "MAX", strings.Repeat("x", 5120)), 0, "")
	wantExit(t, dotdo(t, platform.adminKey, nil, "secret", "put", "A"), cli.ExitUsage, "--service is required")
	if out := ok(t, "secret", "list", "--service", "webhooks", "--env", "production"); strings.Contains(out, "BIG") || strings.Contains(out, "EMPTY") || !strings.Contains(out, "MAX") {
		t.Fatalf("after the bad puts, list printed %q", out)
	}

	// The value is nowhere but in the worker.
	audit := ok(t, "audit", "list", "--limit", "200", "--output", "json")
	if !strings.Contains(audit, "secret.put") || !strings.Contains(audit, "secret/production/webhooks/WEBHOOK_TOKEN") || strings.Contains(audit, marker) {
		t.Fatalf("audit list: has secret.put %v, holds the value %v", strings.Contains(audit, "secret.put"), strings.Contains(audit, marker))
	}
	if strings.Contains(ok(t, "audit", "list", "--limit", "200"), marker) {
		t.Fatal("the audit table holds the value")
	}
	holdsNowhere(t, platform.dataDir, marker)
	holdsNowhere(t, filepath.Dir(platform.dataDir), marker) // dev.log: the platform's log
	if _, err := os.Stat(filepath.Join(platform.dataDir, "runtime", "secrets.key")); err != nil {
		t.Logf("(runtime key file not at the expected path: %v)", err)
	}

	// Delete: the worker no longer sees it; a second delete is not found.
	r = dotdo(t, platform.adminKey, nil, "secret", "delete", "WEBHOOK_TOKEN", "--service", "webhooks", "--env", "production")
	wantExit(t, r, 0, "")
	until(t, host, "/", "one token=unset", 10*time.Second)
	if out := ok(t, "secret", "list", "--service", "webhooks", "--env", "production"); strings.Contains(out, "WEBHOOK_TOKEN") {
		t.Fatalf("after delete, list printed %q", out)
	}
	wantExit(t, dotdo(t, platform.adminKey, nil, "secret", "delete", "WEBHOOK_TOKEN", "--service", "webhooks", "--env", "production"), cli.ExitNotFound, "no secret")
}
