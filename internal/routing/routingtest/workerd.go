package routingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
)

// harnessJS wraps the generated Worker: it hands it a stand-in for its
// dispatch namespace binding, whose workers (those of the DEPLOYED
// binding) answer with what they received, and whose other names fail as
// Cloudflare's binding does ("Worker not found").
const harnessJS = `import dispatcher from "./index.js";

function namespace(deployed) {
  return {
    get(name) {
      return {
        async fetch(request) {
          if (!deployed.includes(name)) throw new Error("Worker not found.");
          return Response.json({
            worker: name,
            method: request.method,
            path: new URL(request.url).pathname,
            request_id: request.headers.get("x-request-id"),
          });
        },
      };
    },
  };
}

export default {
  fetch(request, env, ctx) {
    return dispatcher.fetch(request, { ...env, DISPATCHER: namespace(env.DEPLOYED) }, ctx);
  },
};
`

// Workerd is a generated dispatch Worker running in workerd.
type Workerd struct {
	// Client sends requests to it; use BaseURL as their URL's base.
	Client *http.Client
	// BaseURL is the scheme and authority of requests to it.
	BaseURL string
	// Dir is the directory of its configuration and sockets.
	Dir string
}

// StartWorkerd runs w in a workerd process of its own, listening on a Unix
// socket in a temporary directory, with the workers of deployed in its
// stand-in namespace, until tb ends. It skips tb when no workerd binary can
// be found.
func StartWorkerd(tb testing.TB, w routing.Worker, compatibilityDate string, deployed []string) *Workerd {
	tb.Helper()
	deployedJSON, _ := json.Marshal(deployed)
	config := func(dir string) string {
		return fmt.Sprintf(`using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .dispatcher)],
  sockets = [(name = "http", address = %s, http = (), service = "main")],
);

const dispatcher :Workerd.Worker = (
  compatibilityDate = %s,
  modules = [
    (name = "harness.js", esModule = embed "harness.js"),
    (name = "index.js", esModule = embed "index.js"),
  ],
  bindings = [(name = "DEPLOYED", json = %s)],
);
`, strconv.Quote("unix:"+filepath.Join(dir, SocketName)), strconv.Quote(compatibilityDate), strconv.Quote(string(deployedJSON)))
	}
	return ServeWorkerd(tb, config, map[string][]byte{"harness.js": []byte(harnessJS), "index.js": w.Module})
}

// SocketName is the Unix socket, in its directory, that ServeWorkerd
// waits for and Workerd's Client reaches.
const SocketName = "http.sock"

// ServeWorkerd runs workerd serve with the configuration config(dir)
// returns, dir being a temporary directory that also holds files (by
// name), and extra arguments args, until tb ends. It returns once
// dir/SocketName accepts connections. It skips tb when no workerd binary
// can be found.
func ServeWorkerd(tb testing.TB, config func(dir string) string, files map[string][]byte, args ...string) *Workerd {
	tb.Helper()
	bin, err := findWorkerd()
	if err != nil {
		tb.Skipf("skipping: this test runs workerd: %v", err)
	}
	dir, err := os.MkdirTemp("", "routingtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, SocketName) // short: a socket path has a small limit
	files["config.capnp"] = []byte(config(dir))
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, append([]string{"serve", filepath.Join(dir, "config.capnp")}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start workerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := dial(context.Background(), "", ""); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			tb.Fatalf("workerd exited before listening: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("workerd did not listen within 30s: %s", out.String())
		}
	}
	return &Workerd{
		Client: &http.Client{
			Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		BaseURL: "http://workerd",
		Dir:     dir,
	}
}

// findWorkerd returns the workerd binary: $DOTDO_WORKERD, else the native
// binary of the npm package in the nearest node_modules, else its launcher.
func findWorkerd() (string, error) {
	if p := os.Getenv("DOTDO_WORKERD"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	arch := runtime.GOARCH
	if arch == "amd64" {
		arch = "64"
	}
	for {
		nm := filepath.Join(dir, "node_modules")
		for _, p := range []string{
			filepath.Join(nm, "@cloudflare", "workerd-"+runtime.GOOS+"-"+arch, "bin", "workerd"),
			filepath.Join(nm, ".bin", "workerd"),
		} {
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode().Perm()&0o111 != 0 {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no node_modules/.bin/workerd here or above (run npm ci, or set DOTDO_WORKERD)")
		}
		dir = parent
	}
}

// Do sends v's request to the Worker and checks the answer.
func (wd *Workerd) Do(v Vector) error {
	req, err := v.Request(wd.BaseURL)
	if err != nil {
		return err
	}
	res, err := wd.Client.Do(req)
	if err != nil {
		return err
	}
	return v.Check(res)
}
