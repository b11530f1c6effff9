package boot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/store"
)

// gate holds CompleteDeployment calls while closed, so a test can stop the
// deploy process between its upload and the record of the outcome.
type gate struct {
	mu      sync.Mutex
	closed  bool
	held    chan struct{} // receives when a call is held
	release chan struct{}
}

func newGate() *gate {
	return &gate{closed: true, held: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.release)
	}
}

func (g *gate) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().Procedure == dbv1connect.DBServiceCompleteDeploymentProcedure {
				g.mu.Lock()
				closed := g.closed
				g.mu.Unlock()
				if closed {
					g.held <- struct{}{}
					select {
					case <-g.release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
			}
			return next(ctx, req)
		}
	}
}

// TestCrashBetweenUploadAndCompletion kills the deploy process (SIGKILL)
// after its upload and before it records the outcome, restarts it, and
// checks that the start-up reconciler repaired and audited the deployment.
func TestCrashBetweenUploadAndCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the deploy binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	token := credential.Generate()

	// db with the gate, auth, runtime: in this process.
	dbc := DBConfig{Common: Common{DataDir: dir, InternalToken: token}}
	st, err := dbc.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := newGate()
	t.Cleanup(g.open)
	opts, err := rpc.HandlerOptions(rpc.WithInternalToken(token), rpc.WithLogger(testsupport.QuietLogger()), rpc.WithInterceptors(g.interceptor()))
	if err != nil {
		t.Fatal(err)
	}
	dbSrv := server.New("db", server.WithLogger(testsupport.QuietLogger()))
	dbSrv.Register(dbv1connect.NewDBServiceHandler(db.NewHandler(st), opts...))
	dbURL := serve(t, dbSrv)
	ac := AuthConfig{Common: Common{DataDir: dir, InternalToken: token}, DBURL: dbURL}
	authSrv, err := ac.Server(testsupport.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	authURL := serve(t, authSrv)
	rc := RuntimeConfig{Common: Common{DataDir: dir, InternalToken: token}}
	rt, err := rc.Runtime(ctx, testsupport.QuietLogger())
	if err != nil {
		t.Skipf("runtime unavailable (is workerd installed? run npm ci): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	runtimeURL := serve(t, rc.Server(testsupport.QuietLogger(), rt))
	adminKey, err := Bootstrap(ctx, authURL, token, dir)
	if err != nil {
		t.Fatal(err)
	}

	// The deploy binary, as its own process.
	bin := filepath.Join(t.TempDir(), "deploy")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/deploy").CombinedOutput(); err != nil {
		t.Fatalf("build deploy: %v\n%s", err, out)
	}
	addr := testsupport.FreeAddr(t)
	env := append(os.Environ(),
		"DOTDO_DEPLOY_ADDR="+addr, "DOTDO_DB_URL="+dbURL, "DOTDO_AUTH_URL="+authURL, "DOTDO_RUNTIME_URL="+runtimeURL,
		"DOTDO_INTERNAL_TOKEN="+token, "DOTDO_DATA_DIR="+dir, "DOTDO_DEPLOY_LEASE_TTL=2s",
		"DOTDO_ENVIRONMENTS=production=dotdo-production")
	startDeploy := func() (*exec.Cmd, *testsupport.LogBuffer) {
		cmd := exec.Command(bin)
		cmd.Env = env
		// Read while the process still writes to it.
		var logs testsupport.LogBuffer
		cmd.Stderr = &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := WaitHealthy(wctx, "http://"+addr); err != nil {
			// The test fails either way; a process that has exited
			// already makes Kill fail, which is no news.
			_ = cmd.Process.Kill()
			t.Fatalf("deploy did not start: %v\n%s", err, logs.String())
		}
		return cmd, &logs
	}

	first, _ := startDeploy()
	client := (&testStack{apiURL: "http://" + addr}).client(adminKey)
	deployErr := make(chan error, 1)
	go func() {
		_, err := client.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{
			Service: "gateway", Environment: "production", Script: worker("survivor"),
		}))
		deployErr <- err
	}()
	select {
	case <-g.held: // uploaded; the outcome is about to be recorded
	case err := <-deployErr:
		t.Fatalf("deploy returned before completing: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the deploy never reached CompleteDeployment")
	}
	pending, err := st.ListPending(ctx)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending before the crash = %v, %v", pending, err)
	}
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err == nil {
		t.Fatal("the deploy process exited cleanly after SIGKILL")
	}
	if err := <-deployErr; err == nil {
		t.Fatal("the client saw success from a killed process")
	}
	g.open()

	second, logs := startDeploy()
	defer func() {
		if err := second.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop the deploy process: %v", err)
		}
		if err := second.Wait(); err != nil {
			t.Errorf("the deploy process after SIGTERM: %v\n%s", err, logs.String())
		}
	}()
	// Healthy means Prepare ran, including the reconciler.
	d, err := st.GetDeployment(ctx, pending[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusLive {
		t.Fatalf("after restart the deployment is %s (%s), want live\n%s", d.Status, d.Error, logs.String())
	}
	if left, _ := st.ListPending(ctx); len(left) != 0 {
		t.Fatalf("still pending after restart: %v", left)
	}
	events, _, err := st.ListAudit(ctx, store.AuditFilter{Action: "deployment.reconcile"})
	if err != nil || len(events) == 0 {
		t.Fatalf("no reconcile audit event: %v %v", events, err)
	}
	if !strings.Contains(fmt.Sprint(events[0].Resource), "gateway") || events[0].Actor != "system" {
		t.Fatalf("reconcile event = %+v", events[0])
	}
}
