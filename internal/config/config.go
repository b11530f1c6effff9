// Package config holds the platform's defaults and reads settings from flags
// with environment-variable fallbacks, so that every binary is configured the
// same way: a flag wins, then its DOTDO_* (or standard) variable, then the
// default documented in README.md.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Default addresses of the five services, as DESIGN.md lists them.
const (
	DefaultDeployAddr     = "127.0.0.1:8080"
	DefaultAuthAddr       = "127.0.0.1:8081"
	DefaultDBAddr         = "127.0.0.1:8082"
	DefaultDispatcherAddr = "127.0.0.1:8787"
	DefaultRuntimeAddr    = "127.0.0.1:8790"
)

// DefaultDataDir is where SQLite, the runtime's scripts and the generated
// credentials live.
const DefaultDataDir = ".dotdo"

// DefaultEnvironments are the environments and their dispatch namespaces.
var DefaultEnvironments = []Environment{
	{Name: "production", Namespace: "dotdo-production"},
	{Name: "staging", Namespace: "dotdo-staging"},
	{Name: "development", Namespace: "dotdo-development"},
}

// Environment maps an environment to its dispatch namespace.
type Environment struct {
	Name      string
	Namespace string
}

// Env returns the value of the first set variable among keys, or def.
func Env(def string, keys ...string) string {
	for _, k := range keys {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			return v
		}
	}
	return def
}

// EnvOr is Env with a lookup function, for code that is handed its
// environment (the CLI and its tests).
func EnvOr(getenv func(string) string, def string, keys ...string) string {
	for _, k := range keys {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return def
}

// String registers a string flag whose default comes from the environment
// variable env when it is set.
func String(fs *flag.FlagSet, p *string, name, env, def, usage string) {
	fs.StringVar(p, name, Env(def, env), fmt.Sprintf("%s (env %s)", usage, env))
}

// Duration registers a duration flag whose default comes from env. A
// value of env that does not parse is reported by Check.
func Duration(fs *flag.FlagSet, p *time.Duration, name, env string, def time.Duration, usage string) {
	fs.DurationVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	fromEnv(fs, name, env)
}

// Int64 registers an int64 flag whose default comes from env. A value of
// env that does not parse is reported by Check.
func Int64(fs *flag.FlagSet, p *int64, name, env string, def int64, usage string) {
	fs.Int64Var(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	fromEnv(fs, name, env)
}

var (
	envMu  sync.Mutex
	envErr = map[*flag.FlagSet][]error{}
)

// fromEnv sets flag name from the variable env, when set, keeping any
// error for Check.
func fromEnv(fs *flag.FlagSet, name, env string) {
	v := Env("", env)
	if v == "" {
		return
	}
	if err := fs.Set(name, v); err != nil {
		envMu.Lock()
		envErr[fs] = append(envErr[fs], fmt.Errorf("%s=%q: %w", env, v, err))
		envMu.Unlock()
	}
}

// Check returns the errors of environment variables that did not parse
// into fs's flags, so that a bad value stops the program as a bad flag
// would rather than silently giving way to the default.
func Check(fs *flag.FlagSet) error {
	envMu.Lock()
	defer envMu.Unlock()
	return errors.Join(envErr[fs]...)
}

// ParseEnvironments parses "production=dotdo-production,staging=..." into
// environments. A bare name maps to "dotdo-<name>".
func ParseEnvironments(s string) ([]Environment, error) {
	var out []Environment
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, ns, ok := strings.Cut(part, "=")
		if !ok {
			ns = "dotdo-" + name
		}
		name, ns = strings.TrimSpace(name), strings.TrimSpace(ns)
		if name == "" || ns == "" {
			return nil, fmt.Errorf("config: environment %q: want name=namespace", part)
		}
		if seen[name] {
			return nil, fmt.Errorf("config: environment %q listed twice", name)
		}
		seen[name] = true
		out = append(out, Environment{Name: name, Namespace: ns})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("config: no environments")
	}
	return out, nil
}

// FormatEnvironments is the inverse of ParseEnvironments.
func FormatEnvironments(envs []Environment) string {
	parts := make([]string, len(envs))
	for i, e := range envs {
		parts[i] = e.Name + "=" + e.Namespace
	}
	return strings.Join(parts, ",")
}
