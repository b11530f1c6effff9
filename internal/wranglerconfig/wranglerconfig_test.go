package wranglerconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const jsoncFile = `{
  // the gateway
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "gateway",
  "main": "src/index.js",
  "compatibility_date": "2025-01-01",
  "compatibility_flags": ["nodejs_compat"],
  "vars": { "GREETING": "hello", },
  "services": [ { "binding": "DB", "service": "db", "entrypoint": "X" } ],
  "triggers": { "crons": ["*/5 * * * *"] },
  "limits": { "cpu_ms": 50 },
  "kv_namespaces": [],
  /* trailing commas are fine */
}`

const tomlFile = `name = "gateway"
main = "src/index.js"
compatibility_date = "2025-01-01"
compatibility_flags = ["nodejs_compat"]
workers_dev = false

[vars]
GREETING = "hello"

[[services]]
binding = "DB"
service = "db"
entrypoint = "X"

[triggers]
crons = ["*/5 * * * *"]

[limits]
cpu_ms = 50
`

func TestParse(t *testing.T) {
	for _, name := range []string{"wrangler.jsonc", "wrangler.toml"} {
		t.Run(name, func(t *testing.T) {
			data := jsoncFile
			unsupported := []string{"kv_namespaces", "services[0].entrypoint"}
			if strings.HasSuffix(name, ".toml") {
				data = tomlFile
				unsupported = []string{"services[0].entrypoint", "workers_dev"}
			}
			c, err := Parse(name, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "gateway" || c.Main != "src/index.js" || c.CompatibilityDate != "2025-01-01" ||
				!reflect.DeepEqual(c.CompatibilityFlags, []string{"nodejs_compat"}) ||
				!reflect.DeepEqual(c.Vars, map[string]string{"GREETING": "hello"}) ||
				!reflect.DeepEqual(c.Services, []Service{{Binding: "DB", Service: "db"}}) ||
				!reflect.DeepEqual(c.Crons(), []string{"*/5 * * * *"}) || c.Limits.CPUMs != 50 {
				t.Fatalf("parsed %+v", c)
			}
			if !reflect.DeepEqual(c.Unsupported, unsupported) {
				t.Fatalf("unsupported %v, want %v", c.Unsupported, unsupported)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, data, want string }{
		{"syntax", "wrangler.jsonc", "{\n  \"name\": \"x\"\n  \"main\": \"y\"\n}", "line 3, column 3"},
		{"unterminated", "wrangler.json", "{\n \"name\": ", "line 2"},
		{"type", "wrangler.jsonc", "{\n  \"vars\": {\"N\": 5}\n}", "line 2"},
		{"type field", "wrangler.jsonc", "{\n  \"vars\": {\"N\": 5}\n}", "vars: want string"},
		{"toml syntax", "wrangler.toml", "name = \"x\"\nmain = \n", "line 2, column"},
		{"toml type", "wrangler.toml", "name = 5\n", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file, []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFindAndLoad(t *testing.T) {
	dir := t.TempDir()
	if p, err := Find(dir); err != nil || p != "" {
		t.Fatalf("Find in an empty directory = %q, %v", p, err)
	}
	for _, n := range []string{"wrangler.toml", "wrangler.jsonc"} {
		data := tomlFile
		if n == "wrangler.jsonc" {
			data = jsoncFile
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Find(dir)
	if err != nil || filepath.Base(p) != "wrangler.jsonc" {
		t.Fatalf("Find = %q, %v; want wrangler.jsonc first", p, err)
	}
	c, err := Load(p)
	if err != nil || c.Path != p || c.Name != "gateway" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": line 1") {
		t.Fatalf("Load of a malformed file = %v, want its path and line", err)
	}
}
