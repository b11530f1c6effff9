// Package examples_test checks that wrangler reads the examples' wrangler
// configs as the platform does: `wrangler deploy --dry-run --outdir DIR`
// accepts each of them (and the wrangler.json `dotdo dispatcher build`
// writes), bundles its worker, and reports the same bindings and vars as
// internal/wranglerconfig reads.
//
// The wrangler is wrangler 3 (the last major that runs on Node 20) from
// tools/wrangler, installed apart from the root package.json by
// `make wrangler`; the test skips when it is absent. It runs offline: no
// metrics, a fresh home and temporary directory, and wrangler's update
// check pointed at a loopback server of the test's own that answers 404.
package examples_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/wranglerconfig"
)

// ansi matches a terminal colour escape.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// wranglerBin is wrangler's command, relative to this directory.
var wranglerBin = filepath.Join("..", "tools", "wrangler", "node_modules", ".bin", "wrangler")

func TestWranglerAcceptsConfigs(t *testing.T) {
	bin, err := filepath.Abs(wranglerBin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("wrangler 3 is not installed (%s is missing): run `make wrangler`, which runs `npm ci --prefix tools/wrangler`", bin)
	}
	var updateChecks atomic.Int64
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		updateChecks.Add(1)
		http.NotFound(w, nil)
	}))
	defer registry.Close()

	dirs := exampleDirs(t)
	if len(dirs) < 8 {
		t.Fatalf("found %d example directories with a wrangler config, want the seed's 8 at least: %v", len(dirs), dirs)
	}
	named := map[string]string{"dotdo dispatcher build": dispatchWorkerDir(t)}
	for _, dir := range dirs {
		named[filepath.ToSlash(dir)] = dir
	}
	t.Run("dry-run", func(t *testing.T) {
		for name, dir := range named {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dryRun(t, bin, registry.URL, dir)
			})
		}
	})
	t.Logf("wrangler asked the loopback registry %d times (its update check)", updateChecks.Load())
}

// exampleDirs returns the directories under this one that hold a wrangler
// config, sorted.
func exampleDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || (path != "." && strings.HasPrefix(d.Name(), "."))) {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		p, err := wranglerconfig.Find(path)
		if err == nil && p != "" {
			dirs = append(dirs, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

// dispatchWorkerDir writes the dispatch Worker generated from the seed
// routing table, with its wrangler.json, to a new directory.
func dispatchWorkerDir(t *testing.T) string {
	t.Helper()
	w, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{
		Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01", TableVersion: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dispatch-worker")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range w.Files() {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dryRun runs `wrangler deploy --dry-run --outdir` over a copy of dir (so
// that wrangler's .wrangler directory stays out of the tree) and checks
// that it succeeds without a warning, bundles the main module, and lists
// the bindings and vars our parser reads.
func dryRun(t *testing.T, bin, registry, dir string) {
	cfgPath, err := wranglerconfig.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := wranglerconfig.Load(cfgPath)
	if err != nil {
		t.Fatalf("our parser refuses it: %v", err)
	}
	tmp := t.TempDir()
	work, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "out")
	if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"home", "tmp", "config"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "deploy", "--dry-run", "--outdir", out)
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(tmp, "home"),
		"TMPDIR=" + filepath.Join(tmp, "tmp"),
		"XDG_CONFIG_HOME=" + filepath.Join(tmp, "config"),
		"WRANGLER_SEND_METRICS=false",
		"CI=1",
		// wrangler's update check asks the npm registry of the rc file
		// or the environment (npm_registry): here a loopback server.
		"npm_registry=" + registry + "/",
	}
	b, err := cmd.CombinedOutput()
	output := ansi.ReplaceAllString(string(b), "") // wrangler colours its warnings whatever the terminal
	if err != nil {
		t.Fatalf("wrangler deploy --dry-run: %v\n%s", err, output)
	}
	if strings.Contains(output, "[WARNING]") || strings.Contains(output, "[ERROR]") {
		t.Errorf("wrangler warns about %s:\n%s", cfgPath, output)
	}
	main := cfg.Main
	if main == "" {
		main = "index.js"
	}
	bundle := filepath.Join(out, filepath.Base(main))
	if st, err := os.Stat(bundle); err != nil || st.Size() == 0 {
		t.Errorf("wrangler wrote no bundle %s (%v):\n%s", bundle, err, output)
	}
	for _, s := range cfg.Services {
		if want := fmt.Sprintf("- %s: %s\n", s.Binding, s.Service); !strings.Contains(output, want) {
			t.Errorf("wrangler does not list the binding %q:\n%s", want, output)
		}
	}
	for k, v := range cfg.Vars {
		if want := fmt.Sprintf("- %s: %q\n", k, v); !strings.Contains(output, want) {
			t.Errorf("wrangler does not list the var %q:\n%s", want, output)
		}
	}
}
