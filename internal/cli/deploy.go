package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/internal/config"
)

// maxReadFile bounds what deploy reads from disk, well above the server's
// default limit, so that the server's error (naming its limit) is what the
// user sees.
const maxReadFile = 64 << 20

func runDeploy(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "deploy")
	service := fs.String("service", "", "worker name (required)")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	file := fs.String("file", "", "single-module worker: an ES module file")
	dir := fs.String("dir", "", "multi-module worker: a directory of modules")
	main := fs.String("main", "", "main module of --dir (default index.js, index.mjs, worker.js or the only .js file)")
	compat := fs.String("compatibility-date", "", "workerd compatibility date (server default when empty)")
	idem := fs.String("idempotency-key", "", "makes a retried deploy return the first result")
	var tags stringList
	fs.Var(&tags, "tag", "extra script tag (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required")
	}
	if (*file == "") == (*dir == "") {
		return usagef("give exactly one of --file or --dir")
	}
	req := &deployv1.DeployRequest{
		Service:           *service,
		Environment:       *env,
		CompatibilityDate: *compat,
		Tags:              tags,
		IdempotencyKey:    *idem,
		Metadata:          metadataFromEnv(e),
	}
	var size int64
	if *file != "" {
		b, err := readFile(*file)
		if err != nil {
			return err
		}
		req.Script, size = b, int64(len(b))
	} else {
		mods, mainModule, err := readModules(*dir, *main)
		if err != nil {
			return err
		}
		req.Modules, req.MainModule = mods, mainModule
		for _, m := range mods {
			size += int64(len(m.Content))
		}
	}
	res, err := e.newClients().deploy.Deploy(withUploadSize(ctx, size), connect.NewRequest(req))
	if err != nil {
		return err
	}
	d := res.Msg.GetDeployment()
	fmt.Fprintf(e.Stdout, "%s %s version %d: %s (deployment %s)\n", d.GetService(), d.GetEnvironment(), d.GetVersion(), statusName(d.GetStatus()), d.GetId())
	if u := res.Msg.GetUrl(); u != "" {
		fmt.Fprintf(e.Stdout, "url: %s\n", u)
	}
	if d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return deployFailed{"deployment failed: " + d.GetError()}
	}
	return nil
}

// metadataFromEnv fills the deploy metadata from GitHub Actions' variables
// when they are set.
func metadataFromEnv(e *Env) *deployv1.Metadata {
	md := &deployv1.Metadata{
		Commit: e.Getenv("GITHUB_SHA"),
		Branch: e.Getenv("GITHUB_REF_NAME"),
		Author: e.Getenv("GITHUB_ACTOR"),
	}
	if md.Commit == "" && md.Branch == "" && md.Author == "" {
		return nil
	}
	return md
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
// node_modules) as a module named by its slash-separated relative path.
func readModules(dir, main string) ([]*deployv1.Module, string, error) {
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
		if !d.Type().IsRegular() {
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
	fmt.Fprintf(e.Stdout, "%s %s version %d: %s, restoring version %d (deployment %s)\n",
		d.GetService(), d.GetEnvironment(), d.GetVersion(), statusName(d.GetStatus()), d.GetRestoredVersion(), d.GetId())
	if d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return deployFailed{"rollback failed: " + d.GetError()}
	}
	return nil
}

// statusName is a status without its enum prefix, in lower case.
func statusName(s deployv1.DeploymentStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DEPLOYMENT_STATUS_"))
}
