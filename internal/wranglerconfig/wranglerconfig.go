// Package wranglerconfig reads the part of a wrangler configuration file
// (wrangler.jsonc, wrangler.json or wrangler.toml) that the dotdo platform
// deploys: name, main, compatibility_date, compatibility_flags, vars,
// services and triggers.crons. Keys it does not support are listed in
// Config.Unsupported, so that the caller can warn about them rather than
// drop them silently. A malformed file is an error naming its line and
// column.
package wranglerconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/tailscale/hujson"
)

// FileNames are the configuration files looked for, in this order.
var FileNames = []string{"wrangler.jsonc", "wrangler.json", "wrangler.toml"}

// Service is one entry of services: a binding to another worker.
type Service struct {
	// Binding is the name in env.
	Binding string `json:"binding" toml:"binding"`
	// Service is the target worker.
	Service string `json:"service" toml:"service"`
}

// Config is what the platform reads of a wrangler configuration.
type Config struct {
	// Path is the file read.
	Path string `json:"-" toml:"-"`
	// Name is the worker's name.
	Name string `json:"name" toml:"name"`
	// Main is the entry module, relative to the file's directory.
	Main string `json:"main" toml:"main"`
	// CompatibilityDate is the workerd compatibility date.
	CompatibilityDate string `json:"compatibility_date" toml:"compatibility_date"`
	// CompatibilityFlags are workerd compatibility flags.
	CompatibilityFlags []string `json:"compatibility_flags" toml:"compatibility_flags"`
	// Vars are plain-text environment variables.
	Vars map[string]string `json:"vars" toml:"vars"`
	// Services are bindings to other workers.
	Services []Service `json:"services" toml:"services"`
	// Triggers holds the cron triggers.
	Triggers struct {
		// Crons are 5-field cron expressions.
		Crons []string `json:"crons" toml:"crons"`
	} `json:"triggers" toml:"triggers"`
	// Limits bound each invocation.
	Limits struct {
		// CPUMs is the CPU time one invocation may use, in milliseconds.
		CPUMs int64 `json:"cpu_ms" toml:"cpu_ms"`
	} `json:"limits" toml:"limits"`
	// Unsupported lists the keys present that the platform does not
	// deploy, as dotted paths (for example "kv_namespaces" or
	// "services[0].entrypoint"), sorted.
	Unsupported []string `json:"-" toml:"-"`
}

// Crons returns the cron triggers.
func (c Config) Crons() []string { return c.Triggers.Crons }

// Find returns the path of the first of FileNames in dir, or "" when there
// is none.
func Find(dir string) (string, error) {
	for _, n := range FileNames {
		p := filepath.Join(dir, n)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}

// Load reads the configuration file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := Parse(filepath.Base(path), data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse parses data as the configuration file name (its extension selects
// TOML or JSON with comments and trailing commas).
func Parse(name string, data []byte) (Config, error) {
	if strings.HasSuffix(name, ".toml") {
		return parseTOML(data)
	}
	return parseJSONC(data)
}

// known holds the keys the platform reads; nested ones as "parent.key",
// entries of arrays as "parent[].key".
var known = map[string]bool{
	"$schema": true, "name": true, "main": true, "compatibility_date": true, "compatibility_flags": true,
	"vars": true, "services": true, "services[].binding": true, "services[].service": true,
	"triggers": true, "triggers.crons": true, "limits": true, "limits.cpu_ms": true,
}

func parseJSONC(data []byte) (Config, error) {
	std, err := hujson.Standardize(bytes.Clone(data))
	if err != nil {
		return Config{}, errors.New(strings.TrimPrefix(err.Error(), "hujson: "))
	}
	// Standardize keeps every byte offset (comments become spaces), so
	// offsets in std are offsets in data.
	var c Config
	if err := json.Unmarshal(std, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			line, col := lineColumn(data, int(te.Offset))
			return Config{}, fmt.Errorf("line %d, column %d: %s: want %s, not a JSON %s", line, col, te.Field, te.Type, te.Value)
		}
		return Config{}, err
	}
	var raw map[string]any
	if err := json.Unmarshal(std, &raw); err != nil {
		return Config{}, err
	}
	c.Unsupported = unsupported(raw)
	return c, nil
}

func parseTOML(data []byte) (Config, error) {
	var c Config
	_, err := toml.Decode(string(data), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, fmt.Errorf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return Config{}, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return Config{}, err
	}
	c.Unsupported = unsupported(raw)
	return c, nil
}

// unsupported lists the keys of raw that known does not hold.
func unsupported(raw map[string]any) []string {
	var out []string
	var walk func(prefix, pattern string, v any)
	walk = func(prefix, pattern string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p, pat := k, k
				if prefix != "" {
					p, pat = prefix+"."+k, pattern+"."+k
				}
				if !known[pat] {
					out = append(out, p)
					continue
				}
				if pat == "vars" {
					continue // any name is a var
				}
				walk(p, pat, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", prefix, i), pattern+"[]", x)
			}
		case []map[string]any: // TOML arrays of tables
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", prefix, i), pattern+"[]", x)
			}
		}
	}
	walk("", "", raw)
	sort.Strings(out)
	return out
}

// lineColumn returns the 1-based line and column of byte offset n of b.
func lineColumn(b []byte, n int) (line, col int) {
	if n > len(b) {
		n = len(b)
	}
	line = 1 + bytes.Count(b[:n], []byte("\n"))
	col = 1 + n - (bytes.LastIndexByte(b[:n], '\n') + 1)
	return line, col
}
