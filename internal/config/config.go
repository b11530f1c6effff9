// Package config holds the platform's defaults and reads settings from flags
// with environment-variable fallbacks, so that every binary is configured the
// same way: a flag wins, then its DOTDO_* (or standard) variable, then the
// default documented in README.md. It also holds the one model of an
// environment and its dispatch namespace, and the one parser of
// DOTDO_ENVIRONMENTS (environment.go).
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
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

// DefaultDispatcherOperatorAddr is where the dispatcher answers operators
// (Resolve, gRPC reflection, /metrics), apart from the workers' traffic.
const DefaultDispatcherOperatorAddr = "127.0.0.1:8788"

// DefaultDataDir is where SQLite, the runtime's scripts and the generated
// credentials live.
const DefaultDataDir = ".dotdo"

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
