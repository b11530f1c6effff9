package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/cron"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/deploy/backend"
)

// Limits of a worker's configuration. They match the protovalidate rules
// of deploy.proto.
const (
	// MaxVars bounds a worker's vars.
	MaxVars = 64
	// MaxVarValueLen bounds a var's value (Cloudflare's limit on an
	// environment variable, 5 KiB).
	MaxVarValueLen = 5 << 10
	// MaxServiceBindings bounds a worker's service bindings.
	MaxServiceBindings = 32
	// MaxCrons bounds a worker's cron triggers.
	MaxCrons = 8
	// MaxCronLen bounds a cron expression.
	MaxCronLen = 128
	// MaxCPUMs bounds Limits.CPUMs: Cloudflare's largest CPU limit, five
	// minutes.
	MaxCPUMs = 300_000
)

// ReservedBindingPrefix starts the env names the platform keeps for itself
// (the namespace binding behind service bindings on Cloudflare); a var or
// binding may not start with it.
const ReservedBindingPrefix = "__DOTDO"

// ServiceBinding binds another worker of the same environment into a
// worker's env.
type ServiceBinding struct {
	// Binding is the name in env, a JavaScript identifier.
	Binding string `json:"binding"`
	// Service is the target worker.
	Service string `json:"service"`
}

// WorkerConfig is a worker's configuration beside its script, recorded
// with its deployment (store.Deployment.Config) and restored by a
// rollback.
type WorkerConfig struct {
	// Vars are plain-text environment variables.
	Vars map[string]string `json:"vars,omitempty"`
	// Services are bindings to other workers of the environment.
	Services []ServiceBinding `json:"services,omitempty"`
	// Crons are cron triggers (5-field, UTC).
	Crons []string `json:"crons,omitempty"`
	// Limits bound each invocation.
	Limits Limits `json:"limits,omitzero"`
}

// Limits bound each invocation of a worker, as wrangler's `limits` do.
type Limits struct {
	// CPUMs is the CPU time one invocation may use, in milliseconds; 0
	// takes the backend's default.
	CPUMs int64 `json:"cpu_ms,omitempty"`
}

// empty reports whether c configures nothing.
func (c WorkerConfig) empty() bool {
	return len(c.Vars) == 0 && len(c.Services) == 0 && len(c.Crons) == 0 && c.Limits == Limits{}
}

// encode returns c as the JSON object stored with a deployment, "" when it
// is empty. encoding/json sorts the vars, so the text is deterministic.
func (c WorkerConfig) encode() string {
	if c.empty() {
		return ""
	}
	b, err := json.Marshal(c)
	if err != nil { // strings only: cannot fail
		panic(err)
	}
	return string(b)
}

// ConfigOf reads back the configuration stored with a deployment.
func ConfigOf(stored string) (WorkerConfig, error) {
	var c WorkerConfig
	if stored == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(stored), &c); err != nil {
		return WorkerConfig{}, fmt.Errorf("decode the worker configuration: %v: %w", err, errkind.Corrupt)
	}
	return c, nil
}

// apply puts c into the upload s.
func (c WorkerConfig) apply(s *backend.Script) {
	s.Vars = c.Vars
	s.Services = make([]backend.ServiceBinding, len(c.Services))
	for i, b := range c.Services {
		s.Services[i] = backend.ServiceBinding{Binding: b.Binding, Service: b.Service}
	}
	s.Crons = c.Crons
	s.Limits = backend.Limits{CPUMs: c.Limits.CPUMs}
}

// checkWorkerConfig validates in's vars, bindings and crons for a worker
// of env and returns them as a WorkerConfig. A binding's target must be a
// worker of env's routing table, the workers that may be deployed there.
func (s *Service) checkWorkerConfig(ctx context.Context, env string, in DeployInput) (WorkerConfig, error) {
	var c WorkerConfig
	if len(in.Vars) > MaxVars {
		return c, invalid("vars", "%d vars, more than %d", len(in.Vars), MaxVars)
	}
	keys := make([]string, 0, len(in.Vars))
	for k := range in.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	defined := map[string]string{}
	for _, k := range keys {
		v := in.Vars[k]
		f := fmt.Sprintf("vars[%q]", k)
		if err := checkEnvName(f, k); err != nil {
			return c, err
		}
		if len(v) > MaxVarValueLen || !utf8.ValidString(v) {
			return c, invalid(f, "the value must be at most %d bytes of UTF-8", MaxVarValueLen)
		}
		defined[k] = f
	}
	if len(in.Vars) > 0 {
		c.Vars = in.Vars
	}
	if len(in.Services) > MaxServiceBindings {
		return c, invalid("services", "%d service bindings, more than %d", len(in.Services), MaxServiceBindings)
	}
	var workers []string
	if len(in.Services) > 0 {
		rt, err := s.currentRoutes(ctx, env, 0)
		if err != nil {
			return c, fmt.Errorf("read the routing table of %s: %w", env, err)
		}
		workers = rt.Table.Workers
	}
	for i, b := range in.Services {
		f := fmt.Sprintf("services[%d]", i)
		if err := checkEnvName(f+".binding", b.Binding); err != nil {
			return c, err
		}
		if prev, dup := defined[b.Binding]; dup {
			return c, invalid(f+".binding", "%q is defined already by %s", b.Binding, prev)
		}
		defined[b.Binding] = f + ".binding"
		if !names.ValidService(b.Service) || !slices.Contains(workers, b.Service) {
			return c, invalid(f+".service", "no worker %q in environment %s (its routing table lists %s)", b.Service, env, strings.Join(workers, ", "))
		}
		c.Services = append(c.Services, ServiceBinding{Binding: b.Binding, Service: b.Service})
	}
	crons, err := checkList("crons", in.Crons, MaxCrons, MaxCronLen, func(e string) string {
		if _, err := cron.Parse(e); err != nil {
			return "does not parse: " + strings.TrimPrefix(err.Error(), fmt.Sprintf("%q: ", e))
		}
		return ""
	})
	if err != nil {
		return c, err
	}
	c.Crons = crons
	if ms := in.Limits.CPUMs; ms < 0 || ms > MaxCPUMs {
		return c, invalid("limits.cpu_ms", "%d is not a CPU time from 1 to %d milliseconds (or 0 for the default)", ms, MaxCPUMs)
	}
	c.Limits = in.Limits
	return c, nil
}

// checkEnvName validates the name of a var or binding.
func checkEnvName(field, name string) error {
	switch {
	case !names.ValidIdentifier(name):
		return invalid(field, "%q is not a JavaScript identifier of at most %d characters (letters, digits, _ and $, not starting with a digit)", name, names.MaxIdentifierLen)
	case strings.HasPrefix(name, ReservedBindingPrefix):
		return invalid(field, "%q starts with %q, which is reserved for the platform", name, ReservedBindingPrefix)
	}
	return nil
}
