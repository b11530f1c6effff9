package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/routing"
)

// okJSON runs a dotdo command with --output json as the admin and decodes
// what it prints into v; it fails t unless the command succeeds and prints
// one JSON value.
func okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := ok(t, append(args, "--output", "json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("dotdo %s --output json printed no JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		t.Fatalf("dotdo %s --output json printed more than one JSON value:\n%s", strings.Join(args, " "), out)
	}
}

// routeVersionJSON is a RouteTableVersion's protojson form (int64 fields
// are strings there).
type routeVersionJSON struct {
	Environment     string `json:"environment"`
	Version         int64  `json:"version,string"`
	Kind            string `json:"kind"`
	RestoredVersion int64  `json:"restoredVersion,string"`
	Table           struct {
		PathRoutes []struct {
			Prefix string `json:"prefix"`
			Worker string `json:"worker"`
		} `json:"pathRoutes"`
	} `json:"table"`
}

// routeChangeJSON is SetRoutesResponse's and RollbackRoutesResponse's.
type routeChangeJSON struct {
	Routes          routeVersionJSON `json:"routes"`
	PreviousVersion int64            `json:"previousVersion,string"`
}

// dispatchDeploymentJSON is DeployDispatchWorkerResponse's and
// RollbackDispatchWorkerResponse's.
type dispatchDeploymentJSON struct {
	Deployment struct {
		ID              string   `json:"id"`
		Environment     string   `json:"environment"`
		Version         int64    `json:"version,string"`
		Status          string   `json:"status"`
		Kind            string   `json:"kind"`
		RestoredVersion int64    `json:"restoredVersion,string"`
		ScriptName      string   `json:"scriptName"`
		Routes          []string `json:"routes"`
	} `json:"deployment"`
}

// TestCLIOutputJSON checks that the commands that print records print them
// as JSON with --output json (the response's protojson form): routes set,
// diff and rollback, dispatcher build, deploy and rollback, namespaces
// ensure, audit verify and secret put. It changes the development
// environment only, which no other test uses.
func TestCLIOutputJSON(t *testing.T) {
	need(t)
	const env = "development"
	var table routing.Table
	if err := json.Unmarshal([]byte(ok(t, "routes", "get", "--env", env, "--output", "json")), &table); err != nil {
		t.Fatal(err)
	}
	hosts := table.PathRoutes[0].Hosts
	setTable := func(prefix string) routeChangeJSON {
		t.Helper()
		table.PathRoutes = append(table.PathRoutes, routing.PathRoute{Prefix: prefix, Worker: "mcp", Hosts: hosts})
		file := filepath.Join(t.TempDir(), "routes.json")
		if err := os.WriteFile(file, table.MarshalIndent(), 0o644); err != nil {
			t.Fatal(err)
		}
		var set routeChangeJSON
		okJSON(t, &set, "routes", "set", "--env", env, "--file", file)
		return set
	}
	first := setTable("/json/")
	second := setTable("/json2/")
	hasRoute := func(v routeVersionJSON, prefix string) bool {
		return slices.ContainsFunc(v.Table.PathRoutes, func(r struct {
			Prefix string `json:"prefix"`
			Worker string `json:"worker"`
		}) bool {
			return r.Prefix == prefix && r.Worker == "mcp"
		})
	}
	if first.Routes.Environment != env || first.Routes.Kind != "ROUTE_TABLE_KIND_SET" || !hasRoute(first.Routes, "/json") ||
		second.Routes.Version != first.Routes.Version+1 || second.PreviousVersion != first.Routes.Version || !hasRoute(second.Routes, "/json2") {
		t.Fatalf("routes set --output json: %+v then %+v", first, second)
	}

	var diff struct {
		Environment string           `json:"environment"`
		From        routeVersionJSON `json:"from"`
		To          routeVersionJSON `json:"to"`
		Changes     []string         `json:"changes"`
	}
	okJSON(t, &diff, "routes", "diff", "--env", env)
	if diff.Environment != env || diff.From.Version != first.Routes.Version || diff.To.Version != second.Routes.Version ||
		len(diff.Changes) != 1 || !strings.HasPrefix(diff.Changes[0], "+ path_routes: /json2 -> mcp") {
		t.Fatalf("routes diff --output json: %+v", diff)
	}

	var back routeChangeJSON
	okJSON(t, &back, "routes", "rollback", "--env", env)
	if back.Routes.Kind != "ROUTE_TABLE_KIND_ROLLBACK" || back.Routes.RestoredVersion != first.Routes.Version ||
		back.PreviousVersion != second.Routes.Version || hasRoute(back.Routes, "/json2") || !hasRoute(back.Routes, "/json") {
		t.Fatalf("routes rollback --output json: %+v", back)
	}

	dir := t.TempDir()
	var built struct {
		ScriptName        string `json:"scriptName"`
		RouteTableVersion int64  `json:"routeTableVersion,string"`
		Files             []struct {
			Name    string `json:"name"`
			Content string `json:"content"`
		} `json:"files"`
		Routes []string `json:"routes"`
	}
	okJSON(t, &built, "dispatcher", "build", "--env", env, "--out", dir)
	if built.ScriptName != "dotdo-dispatcher-"+env || built.RouteTableVersion != back.Routes.Version || len(built.Files) != 2 || len(built.Routes) == 0 {
		t.Fatalf("dispatcher build --output json: %+v", built)
	}
	for _, f := range built.Files {
		if st, err := os.Stat(filepath.Join(dir, f.Name)); err != nil || st.Size() == 0 || f.Content != "" {
			t.Fatalf("dispatcher build --output json names %s (content %d bytes in the JSON), written: %v", f.Name, len(f.Content), err)
		}
	}

	var d1, d2, rb dispatchDeploymentJSON
	okJSON(t, &d1, "dispatcher", "deploy", "--env", env)
	okJSON(t, &d2, "dispatcher", "deploy", "--env", env)
	okJSON(t, &rb, "dispatcher", "rollback", "--env", env)
	if d1.Deployment.Status != "DEPLOYMENT_STATUS_LIVE" || d1.Deployment.ScriptName != "dotdo-dispatcher-"+env || d1.Deployment.ID == "" ||
		d2.Deployment.Version != d1.Deployment.Version+1 || len(d2.Deployment.Routes) == 0 {
		t.Fatalf("dispatcher deploy --output json: %+v then %+v", d1, d2)
	}
	if rb.Deployment.Kind != "DEPLOYMENT_KIND_ROLLBACK" || rb.Deployment.RestoredVersion != d1.Deployment.Version ||
		rb.Deployment.Version != d2.Deployment.Version+1 || rb.Deployment.Status != "DEPLOYMENT_STATUS_LIVE" {
		t.Fatalf("dispatcher rollback --output json: %+v", rb)
	}

	var ensured struct {
		Namespaces []struct {
			Environment string `json:"environment"`
			Name        string `json:"name"`
			Exists      bool   `json:"exists"`
		} `json:"namespaces"`
	}
	okJSON(t, &ensured, "namespaces", "ensure", "--env", env)
	if len(ensured.Namespaces) != 1 || ensured.Namespaces[0].Name != "dotdo-"+env || !ensured.Namespaces[0].Exists {
		t.Fatalf("namespaces ensure --output json: %+v", ensured)
	}

	var verified struct {
		OK      bool  `json:"ok"`
		Checked int64 `json:"checked,string"`
		Keyed   bool  `json:"keyed"`
	}
	okJSON(t, &verified, "audit", "verify")
	if !verified.OK || verified.Checked == 0 || !verified.Keyed {
		t.Fatalf("audit verify --output json: %+v", verified)
	}

	ok(t, "deploy", "--service", "mcp", "--env", env, "--file", writeSecretWorker(t, "mcp"))
	const value = "json-secret-value-1c5e"
	r := secretPutJSON(t, "mcp", env, "API_TOKEN", value)
	var put struct {
		Secret struct {
			Name      string `json:"name"`
			UpdatedAt string `json:"updatedAt"`
		} `json:"secret"`
		Created bool `json:"created"`
	}
	if err := json.Unmarshal([]byte(r), &put); err != nil || put.Secret.Name != "API_TOKEN" || put.Secret.UpdatedAt == "" || !put.Created {
		t.Fatalf("secret put --output json: %+v, %v\n%s", put, err, r)
	}
	if strings.Contains(r, value) {
		t.Fatalf("secret put --output json printed the value:\n%s", r)
	}
}

// secretPutJSON runs `dotdo secret put --output json` with value on stdin
// and returns what it printed.
func secretPutJSON(t *testing.T, service, env, name, value string) string {
	t.Helper()
	r := dotdoStdin(t, platform.adminKey, nil, strings.NewReader(value),
		"secret", "put", name, "--service", service, "--env", env, "--output", "json")
	if r.code != 0 {
		t.Fatalf("secret put --output json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
