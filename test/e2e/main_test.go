// Package e2e tests the platform as its users meet it: the real dotdo
// binary runs `dotdo dev` on free loopback ports, and the tests drive it
// with the CLI, grpcurl, buf curl, curl-shaped HTTP and the generated
// TypeScript client.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
)

// platform is the running `dotdo dev`.
var platform struct {
	root    string // the repository
	bin     string // the dotdo binary
	dataDir string
	env     []string // DOTDO_* for the CLI
	apiURL  string
	dispURL string
	// operatorURL is the dispatcher's operator listener (Resolve).
	operatorURL string
	rtURL       string // the runtime
	adminKey    string
	pid         int    // of the dotdo dev process
	skip        string // why the tests skip, if they do
}

func TestMain(m *testing.M) {
	code, stop := start()
	if code != 0 {
		os.Exit(code)
	}
	code = m.Run()
	if stop != nil {
		if err := stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// workerd returns the workerd binary installed by npm, or "".
func workerd(root string) string {
	for _, p := range []string{
		"node_modules/@cloudflare/workerd-linux-64/bin/workerd",
		"node_modules/.bin/workerd",
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return filepath.Join(root, p)
		}
	}
	return ""
}

// start builds dotdo and runs `dotdo dev`; it returns a function that stops
// it with SIGINT, waits, and reports a stop that was not clean.
func start() (int, func() error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	platform.root = root
	wd := workerd(root)
	if wd == "" {
		platform.skip = "workerd is not installed (npm ci): skipping the end-to-end tests"
		return 0, nil
	}
	tmp, err := os.MkdirTemp("", "dotdo-e2e-")
	if err != nil {
		panic(err)
	}
	platform.bin = filepath.Join(tmp, "dotdo")
	build := exec.Command("go", "build", "-o", platform.bin, "./cmd/dotdo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build dotdo: %v\n%s", err, out)
		return 1, nil
	}
	platform.dataDir = filepath.Join(tmp, "data")
	addrs := map[string]string{}
	for _, s := range []string{"DEPLOY", "AUTH", "DB", "RUNTIME", "DISPATCHER", "DISPATCHER_OPERATOR"} {
		addrs[s] = testsupport.FreeAddr(nil) // TestMain has no testing.TB
	}
	platform.apiURL = "http://" + addrs["DEPLOY"]
	platform.dispURL = "http://" + addrs["DISPATCHER"]
	platform.operatorURL = "http://" + addrs["DISPATCHER_OPERATOR"]
	platform.rtURL = "http://" + addrs["RUNTIME"]
	env := append(os.Environ(), "DOTDO_WORKERD="+wd, "DOTDO_DATA_DIR="+platform.dataDir)
	for s, a := range addrs {
		env = append(env, "DOTDO_"+s+"_ADDR="+a)
	}
	dev := exec.Command(platform.bin, "dev")
	dev.Env = env
	dev.Dir = tmp
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := dev.StdoutPipe()
	logFile, _ := os.Create(filepath.Join(tmp, "dev.log"))
	dev.Stderr = logFile
	if err := dev.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "dotdo dev: %v\n", err)
		return 1, nil
	}
	platform.pid = dev.Process.Pid
	stop := func() error {
		defer os.RemoveAll(tmp)
		if err := dev.Process.Signal(os.Interrupt); err != nil {
			return fmt.Errorf("stop dotdo dev: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- dev.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("dotdo dev after SIGINT: %w", err)
			}
			return nil
		case <-time.After(20 * time.Second):
			if err := syscall.Kill(-dev.Process.Pid, syscall.SIGKILL); err != nil {
				return fmt.Errorf("dotdo dev did not stop within 20s of SIGINT, nor on SIGKILL: %w", err)
			}
			return fmt.Errorf("dotdo dev did not stop within 20s of SIGINT: %v", <-done)
		}
	}
	ready := make(chan struct{})
	var banner bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			banner.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "dotdo platform is running") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(120 * time.Second):
		log, _ := os.ReadFile(logFile.Name())
		fmt.Fprintf(os.Stderr, "dotdo dev did not start:\n%s\n%s\n", banner.String(), log)
		_ = stop() // the start failed, as reported; how it stops adds nothing
		return 1, nil
	}
	key, err := os.ReadFile(filepath.Join(platform.dataDir, "admin.key"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "admin key: %v\n", err)
		_ = stop() // the start failed, as reported; how it stops adds nothing
		return 1, nil
	}
	platform.adminKey = strings.TrimSpace(string(key))
	var cliEnv []string
	for _, e := range env {
		if !strings.HasPrefix(e, "DOTDO_DATA_DIR=") { // so that no command falls back on admin.key
			cliEnv = append(cliEnv, e)
		}
	}
	platform.env = append(cliEnv, "DOTDO_API_URL="+platform.apiURL, "DOTDO_DISPATCHER_URL="+platform.operatorURL, "DOTDO_AUTH_URL=http://"+addrs["AUTH"])
	return 0, stop
}

func need(t *testing.T) {
	t.Helper()
	if platform.skip != "" {
		t.Skip(platform.skip)
	}
}

// result is what a command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// dotdo runs the CLI with key as DOTDO_API_KEY ("" for none) and extra
// environment.
func dotdo(t *testing.T, key string, extraEnv []string, args ...string) result {
	t.Helper()
	return dotdoStdin(t, key, extraEnv, nil, args...)
}

// dotdoStdin is dotdo with stdin (none when nil).
func dotdoStdin(t *testing.T, key string, extraEnv []string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, platform.bin, args...)
	cmd.Env = append(append(append([]string{}, platform.env...), "DOTDO_API_KEY="+key), extraEnv...)
	cmd.Stdin = stdin
	cmd.Dir = t.TempDir() // no .dotdo/admin.key to fall back on
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dotdo %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs dotdo as the admin and fails the test on a non-zero exit.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := dotdo(t, platform.adminKey, nil, args...)
	if r.code != 0 {
		t.Fatalf("dotdo %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
