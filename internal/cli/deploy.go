package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/wranglerconfig"
)

// maxReadFile bounds what deploy reads from disk, well above the server's
// default limit, so that the server's error (naming its limit) is what the
// user sees.
const maxReadFile = 64 << 20

func runDeploy(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "deploy")
	var o deployOptions
	fs.StringVar(&o.service, "service", "", "worker name (default: name in the directory's wrangler config; required otherwise)")
	fs.StringVar(&o.env, "env", config.DefaultEnvironment, "environment")
	fs.StringVar(&o.file, "file", "", "single-module worker: an ES module file")
	fs.StringVar(&o.dir, "dir", "", "multi-module worker: a directory of modules, with its wrangler.jsonc, wrangler.json or wrangler.toml if any")
	fs.StringVar(&o.main, "main", "", "main module of --dir (default: main in the wrangler config, else index.js, index.mjs, worker.js or the only .js file)")
	fs.StringVar(&o.compat, "compatibility-date", "", "workerd compatibility date (default: the wrangler config's, else the server's)")
	fs.StringVar(&o.idem, "idempotency-key", "", "makes a retried deploy return the first result")
	fs.StringVar(&o.commit, "commit", "", "source commit (default: GITHUB_SHA, else the git checkout's HEAD)")
	fs.StringVar(&o.branch, "branch", "", "source branch (default: GITHUB_REF_NAME, else the git checkout's branch)")
	fs.StringVar(&o.author, "author", "", "who deploys (default: GITHUB_ACTOR, else git's user.name)")
	all := fs.Bool("all", false, "deploy every subdirectory of --dir that has a wrangler config, each under its name")
	out := fs.String("output", "table", "table or json")
	fs.Var(&o.tags, "tag", "extra script tag (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	if *all {
		if o.dir == "" || o.file != "" || o.service != "" || o.main != "" || o.idem != "" {
			return usagef("--all takes --dir and none of --file, --service, --main or --idempotency-key")
		}
		return deployAll(ctx, e, o, *out)
	}
	if (o.file == "") == (o.dir == "") {
		return usagef("give exactly one of --file or --dir")
	}
	return deployOne(ctx, e, o, *out)
}

// deployOptions are the flags of a deploy.
type deployOptions struct {
	service, env, file, dir, main, compat, idem string
	commit, branch, author                      string
	tags                                        stringList
}

// deployAll deploys each subdirectory of o.dir that holds a wrangler
// config, in name order, and fails after trying them all if any failed.
func deployAll(ctx context.Context, e *Env, o deployOptions, out string) error {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return err
	}
	var failed []string
	var first error
	n := 0
	for _, ent := range entries {
		if !ent.IsDir() || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		sub := filepath.Join(o.dir, ent.Name())
		if p, err := wranglerconfig.Find(sub); err != nil || p == "" {
			continue
		}
		n++
		one := o
		one.dir = sub
		if err := deployOne(ctx, e, one, out); err != nil {
			fmt.Fprintf(e.Stderr, "dotdo deploy: %s: %s\n", sub, oneLine(err))
			failed = append(failed, ent.Name())
			if first == nil {
				first = err
			}
		}
	}
	if n == 0 {
		return usagef("no subdirectory of %s has a wrangler config (%s)", o.dir, strings.Join(wranglerconfig.FileNames, ", "))
	}
	if first != nil {
		return fmt.Errorf("%d of %d deploys failed (%s): %w", len(failed), n, strings.Join(failed, ", "), first)
	}
	return nil
}

// deployOne builds the deploy request of o, with the wrangler config of
// o.dir when it has one (flags win over it), sends it and prints the
// outcome.
func deployOne(ctx context.Context, e *Env, o deployOptions, out string) error {
	req := &deployv1.DeployRequest{
		Service:           o.service,
		Environment:       o.env,
		CompatibilityDate: o.compat,
		Tags:              o.tags,
		IdempotencyKey:    o.idem,
	}
	var size int64
	if o.file != "" {
		b, err := readFile(o.file)
		if err != nil {
			return err
		}
		req.Script, size = b, int64(len(b))
		req.Metadata = sourceMetadata(ctx, e, o, filepath.Dir(o.file))
	} else {
		cfg, err := applyWranglerConfig(e, o.dir, req)
		if err != nil {
			return err
		}
		main := o.main
		if main == "" {
			main = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(cfg.Main)), "./")
			if cfg.Main == "" {
				main = ""
			}
		}
		mods, mainModule, err := readModules(o.dir, main, cfg.Path != "")
		if err != nil {
			return err
		}
		req.Modules, req.MainModule = mods, mainModule
		for _, m := range mods {
			size += int64(len(m.Content))
		}
		req.Metadata = sourceMetadata(ctx, e, o, o.dir)
	}
	if req.Service == "" {
		return usagef("--service is required (or a name in the directory's wrangler config)")
	}
	res, err := e.newClients().deploy.Deploy(withUploadSize(ctx, size), connect.NewRequest(req))
	if err != nil {
		return err
	}
	d := res.Msg.GetDeployment()
	if err := output(e, out, res.Msg, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s version %d: %s (deployment %s)\n", d.GetService(), d.GetEnvironment(), d.GetVersion(), statusName(d.GetStatus()), d.GetId())
		if u := res.Msg.GetUrl(); u != "" {
			fmt.Fprintf(w, "url: %s\n", u)
		}
	}); err != nil {
		return err
	}
	for _, w := range res.Msg.GetWarnings() {
		fmt.Fprintf(e.Stderr, "dotdo deploy: warning: %s\n", w)
	}
	if d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return deployFailed{"deployment failed: " + d.GetError()}
	}
	return nil
}

// applyWranglerConfig reads the wrangler config of dir, when it has one,
// into the fields of req that flags left empty, and warns on stderr about
// the keys the platform does not deploy. A malformed file is an
// invalid_argument error naming its line and column.
func applyWranglerConfig(e *Env, dir string, req *deployv1.DeployRequest) (wranglerconfig.Config, error) {
	path, err := wranglerconfig.Find(dir)
	if err != nil || path == "" {
		return wranglerconfig.Config{}, err
	}
	cfg, err := wranglerconfig.Load(path)
	if err != nil {
		return cfg, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if len(cfg.Unsupported) > 0 {
		fmt.Fprintf(e.Stderr, "dotdo deploy: warning: %s: not supported by the platform, ignored: %s\n", path, strings.Join(cfg.Unsupported, ", "))
	}
	if req.Service == "" {
		req.Service = cfg.Name
	}
	if req.CompatibilityDate == "" {
		req.CompatibilityDate = cfg.CompatibilityDate
	}
	req.CompatibilityFlags = cfg.CompatibilityFlags
	req.Vars = cfg.Vars
	for _, s := range cfg.Services {
		req.Services = append(req.Services, &deployv1.ServiceBinding{Binding: s.Binding, Service: s.Service})
	}
	req.Crons = cfg.Crons()
	if cfg.Limits.CPUMs != 0 {
		req.Limits = &deployv1.Limits{CpuMs: cfg.Limits.CPUMs}
	}
	return cfg, nil
}

func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxReadFile {
		return nil, fmt.Errorf("%s is %s, larger than any deploy can be", path, mib(st.Size()))
	}
	return os.ReadFile(path)
}

// readModules reads every regular file under dir (skipping hidden files and
// node_modules; with a wrangler config, also the config files, package
// manifests and Markdown files) as a module named by its slash-separated
// relative path.
func readModules(dir, main string, wrangler bool) ([]*deployv1.Module, string, error) {
	var mods []*deployv1.Module
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && (strings.HasPrefix(name, ".") || name == "node_modules") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || (wrangler && notModule(name)) {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := readFile(path)
		if err != nil {
			return err
		}
		mods = append(mods, &deployv1.Module{Name: filepath.ToSlash(rel), Content: b})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(mods) == 0 {
		return nil, "", fmt.Errorf("%s holds no modules", dir)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	if main == "" {
		main = guessMain(mods)
	}
	if main == "" {
		return nil, "", usagef("cannot tell the main module of %s: give --main", dir)
	}
	return mods, main, nil
}

// notModule reports whether a file of a directory with a wrangler config
// is part of the project rather than of the worker.
func notModule(name string) bool {
	return slices.Contains(wranglerconfig.FileNames, name) || name == "package.json" || name == "package-lock.json" ||
		strings.HasSuffix(name, ".md")
}

func guessMain(mods []*deployv1.Module) string {
	has := map[string]bool{}
	var js []string
	for _, m := range mods {
		has[m.Name] = true
		if strings.HasSuffix(m.Name, ".js") || strings.HasSuffix(m.Name, ".mjs") {
			js = append(js, m.Name)
		}
	}
	for _, n := range []string{"index.js", "index.mjs", "worker.js", "src/index.js"} {
		if has[n] {
			return n
		}
	}
	if len(js) == 1 {
		return js[0]
	}
	return ""
}

func runRollback(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "rollback")
	service := fs.String("service", "", "worker name (required)")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	version := fs.Int64("version", 0, "version to restore (default: the one live before the current one)")
	reason := fs.String("reason", "", "why, for the audit trail")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required")
	}
	res, err := e.newClients().deploy.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{
		Service: *service, Environment: *env, Version: *version, Reason: *reason,
	}))
	if err != nil {
		return err
	}
	d := res.Msg.GetDeployment()
	if err := output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s version %d: %s, restoring version %d (deployment %s)\n",
			d.GetService(), d.GetEnvironment(), d.GetVersion(), statusName(d.GetStatus()), d.GetRestoredVersion(), d.GetId())
	}); err != nil {
		return err
	}
	if d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return deployFailed{"rollback failed: " + d.GetError()}
	}
	return nil
}

// runTrigger runs `dotdo trigger scheduled`.
func runTrigger(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "trigger", args, map[string]func(context.Context, *Env, []string) error{
		"scheduled": triggerScheduled,
	})
}

func triggerScheduled(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "trigger scheduled")
	service := fs.String("service", "", "worker name (required)")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	cron := fs.String("cron", "", "the cron expression the handler sees (default: the worker's first cron trigger)")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required")
	}
	res, err := e.newClients().deploy.TriggerScheduled(ctx, connect.NewRequest(&deployv1.TriggerScheduledRequest{
		Service: *service, Environment: *env, Cron: *cron,
	}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s version %d: scheduled() ran (cron %q)\n", *service, *env, res.Msg.GetVersion(), res.Msg.GetCron())
	})
}

// statusName is a status without its enum prefix, in lower case.
func statusName(s deployv1.DeploymentStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DEPLOYMENT_STATUS_"))
}
