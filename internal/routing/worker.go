package routing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dot-do/platform/internal/cron"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
)

// workerJS is the dispatch Worker's router. Its data block (between the
// @generated-data markers) is replaced by the table it is generated from;
// as written it runs with a small example table.
//
//go:embed worker.js
var workerJS string

const (
	dataBegin = "// @generated-data-begin\n"
	dataEnd   = "// @generated-data-end\n"
)

// The dispatch Worker's names.
const (
	// WorkerMainModule is the file name of the generated module.
	WorkerMainModule = "index.js"
	// WorkerConfigFile is the file name of its wrangler configuration.
	WorkerConfigFile = "wrangler.json"
	// NamespaceBinding is the dispatch namespace binding the Worker
	// routes through.
	NamespaceBinding = "DISPATCHER"
	// WorkerScriptPrefix starts the script name of an environment's
	// dispatch Worker (see WorkerScriptName).
	WorkerScriptPrefix = "dotdo-dispatcher-"
	// ScheduledHeader marks the request by which the dispatch Worker runs
	// a user worker's scheduled() handler on Cloudflare: its value is
	// "<scheduledTime in ms> <cron>". The platform's wrapper module of a
	// user worker turns such a request into a call of the worker's
	// scheduled(); the dispatch Worker removes the header from every
	// request it routes, so that no outside request carries it.
	ScheduledHeader = "x-dotdo-scheduled"
	// MaxWorkerCrons bounds the cron triggers of a dispatch Worker:
	// Cloudflare allows 250 cron triggers per account on the Workers Paid
	// plan (5 on Free; "Number of Cron Triggers per account" in
	// developers.cloudflare.com/workers/platform/limits/, and
	// cloudflare-docs issue #29326 on the per-account reading), so one
	// script can never hold more.
	MaxWorkerCrons = 250
)

// WorkerScriptName returns the account-level script name of environment's
// dispatch Worker: "dotdo-dispatcher-<environment>".
func WorkerScriptName(environment string) string { return WorkerScriptPrefix + environment }

// WorkerOptions say what a dispatch Worker is generated for.
type WorkerOptions struct {
	// Environment is the environment whose table it routes with. Required.
	Environment string
	// Namespace is the environment's dispatch namespace. Required.
	Namespace string
	// CompatibilityDate is the Worker's compatibility date (YYYY-MM-DD).
	// Required.
	CompatibilityDate string
	// TableVersion is the version of the table, for the header comment.
	TableVersion int64
	// Crons are the cron triggers of the environment's live workers: cron
	// expression -> the workers it runs. The Worker is scheduled with
	// every expression (at most MaxWorkerCrons) and its scheduled()
	// handler runs the workers of the one that fired.
	Crons map[string][]string
}

// Worker is a generated dispatch Worker: an ES module with the table
// embedded as data, and the wrangler configuration that deploys it.
type Worker struct {
	// ScriptName is the account-level script name, WorkerScriptName.
	ScriptName string
	// Module is the ES module, WorkerMainModule.
	Module []byte
	// Config is wrangler.json: the name, main module, compatibility date,
	// the dispatch_namespaces binding and the routes of the table's
	// domains.
	Config []byte
	// Routes are the Workers route patterns that send the table's hosts to
	// the Worker ("do/*", "*.do/*").
	Routes []string
	// Crons are its cron triggers, sorted: the expressions of
	// WorkerOptions.Crons.
	Crons []string
	// CronWorkers is WorkerOptions.Crons normalized: workers sorted and
	// deduplicated, expressions without workers dropped.
	CronWorkers map[string][]string
}

// Files returns the Worker's files by name: WorkerMainModule and
// WorkerConfigFile.
func (w Worker) Files() map[string][]byte {
	return map[string][]byte{WorkerMainModule: w.Module, WorkerConfigFile: w.Config}
}

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// GenerateWorker generates the dispatch Worker of t (normalized and
// validated first) for the environment of o.
func GenerateWorker(t Table, o WorkerOptions) (Worker, error) {
	t = t.Normalize()
	if err := t.Validate(); err != nil {
		return Worker{}, err
	}
	switch {
	case !names.ValidEnvironment(o.Environment):
		return Worker{}, errkind.Errorf(errkind.Invalid, "routing: environment %q is not an environment name", o.Environment)
	case !names.ValidService(o.Namespace):
		return Worker{}, errkind.Errorf(errkind.Invalid, "routing: namespace %q is not a namespace name", o.Namespace)
	case !datePattern.MatchString(o.CompatibilityDate):
		return Worker{}, errkind.Errorf(errkind.Invalid, "routing: compatibility date %q is not YYYY-MM-DD", o.CompatibilityDate)
	}
	crons, err := normalizeCrons(o.Crons)
	if err != nil {
		return Worker{}, err
	}
	begin, end := strings.Index(workerJS, dataBegin), strings.Index(workerJS, dataEnd)
	if begin < 0 || end < begin {
		panic("routing: worker.js has no data block")
	}
	tableJSON := t.MarshalIndent()
	env, _ := json.Marshal(o.Environment)
	var b strings.Builder
	fmt.Fprintf(&b, "// Generated by `dotdo dispatcher build` from version %d of the routing table of\n", o.TableVersion)
	fmt.Fprintf(&b, "// environment %s (namespace %s). Do not edit: change the table with\n", o.Environment, o.Namespace)
	b.WriteString("// `dotdo routes set` and build again.\n//\n")
	b.WriteString(workerJS[:begin])
	b.WriteString(dataBegin)
	fmt.Fprintf(&b, "const ENVIRONMENT = %s;\n", env)
	fmt.Fprintf(&b, "const TABLE_VERSION = %d;\n", o.TableVersion)
	fmt.Fprintf(&b, "const TABLE = %s;\n", strings.TrimSuffix(string(tableJSON), "\n"))
	cronsJSON, _ := json.MarshalIndent(crons.workers, "", "  ")
	fmt.Fprintf(&b, "const CRONS = %s;\n", cronsJSON)
	b.WriteString(workerJS[end:])

	routes := t.RoutePatterns()
	script := WorkerScriptName(o.Environment)
	cfg, err := json.MarshalIndent(wranglerConfig{
		Name:              script,
		Main:              WorkerMainModule,
		CompatibilityDate: o.CompatibilityDate,
		WorkersDev:        false,
		DispatchNamespaces: []wranglerNamespace{{
			Binding: NamespaceBinding, Namespace: o.Namespace,
		}},
		Routes:   routes,
		Triggers: wranglerTriggers{Crons: crons.union},
	}, "", "  ")
	if err != nil {
		return Worker{}, fmt.Errorf("routing: wrangler.json: %w", err)
	}
	return Worker{ScriptName: script, Module: []byte(b.String()), Config: append(cfg, '\n'), Routes: routes,
		Crons: crons.union, CronWorkers: crons.workers}, nil
}

// normalizeCrons checks the cron triggers of a dispatch Worker (cron
// expression -> workers) and returns them with the workers of each
// expression sorted and deduplicated, and expressions without workers
// dropped, and the sorted expressions. An expression that does not parse, a worker name that is not
// a service name, or more than MaxWorkerCrons expressions are an error
// of kind errkind.Invalid naming the field ("crons").
func normalizeCrons(in map[string][]string) (cronSet, error) {
	out := cronSet{union: []string{}, workers: map[string][]string{}}
	for expr, ws := range in {
		if _, err := cron.Parse(expr); err != nil {
			return cronSet{}, errkind.Errorf(errkind.Invalid, "routing: crons: %q: %v", expr, err)
		}
		var list []string
		for _, w := range ws {
			if !names.ValidService(w) {
				return cronSet{}, errkind.Errorf(errkind.Invalid, "routing: crons: %q: worker %q is not a service name", expr, w)
			}
			list = append(list, w)
		}
		if len(list) == 0 {
			continue
		}
		sort.Strings(list)
		out.workers[expr] = slices.Compact(list)
		out.union = append(out.union, expr)
	}
	if len(out.union) > MaxWorkerCrons {
		return cronSet{}, errkind.Errorf(errkind.Invalid,
			"routing: crons: the live workers have %d distinct cron triggers, more than the %d Cloudflare allows a script (and an account)",
			len(out.union), MaxWorkerCrons)
	}
	sort.Strings(out.union)
	return out, nil
}

// cronSet is a dispatch Worker's cron triggers: the sorted expressions,
// and expression -> sorted workers.
type cronSet struct {
	union   []string
	workers map[string][]string
}

// wranglerConfig is the part of a wrangler.json the dispatch Worker needs.
type wranglerConfig struct {
	Name               string              `json:"name"`
	Main               string              `json:"main"`
	CompatibilityDate  string              `json:"compatibility_date"`
	WorkersDev         bool                `json:"workers_dev"`
	DispatchNamespaces []wranglerNamespace `json:"dispatch_namespaces"`
	Routes             []string            `json:"routes"`
	Triggers           wranglerTriggers    `json:"triggers"`
}

type wranglerTriggers struct {
	Crons []string `json:"crons"`
}

type wranglerNamespace struct {
	Binding   string `json:"binding"`
	Namespace string `json:"namespace"`
}

// RoutePatterns returns the Workers route patterns that send every host the
// table routes to its dispatch Worker: "<base>/*" for each base domain, and
// "*.<base>/*" for one whose subdomains the table routes (subdomain routing
// on, or a default or path-route host below it). A Workers route matches
// any path, so the Worker answers the paths no rule routes too, as the Go
// dispatcher does.
func (t Table) RoutePatterns() []string {
	t = t.Normalize()
	bases := longestFirst(t.BaseDomains)
	below := map[string]bool{}
	mark := func(h string) {
		for _, b := range bases {
			if label, ok := belowBase([]string{b}, h); ok {
				if label != "" {
					below[b] = true
				}
				return
			}
		}
	}
	for _, h := range t.DefaultHosts {
		mark(h)
	}
	for _, r := range t.PathRoutes {
		for _, h := range r.Hosts {
			mark(h)
		}
	}
	var out []string
	for _, b := range t.BaseDomains {
		out = append(out, b+"/*")
		if t.Subdomains || below[b] {
			out = append(out, "*."+b+"/*")
		}
	}
	return out
}
