package boot

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/internal/testsupport"
)

// testStack is the whole platform (db on SQLite, auth, runtime with workerd,
// deploy on the runtime, dispatcher for production) on loopback ports, for
// tests.
type testStack struct {
	dir                                string
	dbURL, authURL, runtimeURL, apiURL string
	// dispatcherURL is a dispatcher that reaches the runtime over HTTP,
	// as the dispatcher binary does; localDispatcherURL one that calls it
	// in process, as `dotdo dev` does.
	dispatcherURL, localDispatcherURL string
	adminKey                          string
}

// observe gives each service of a test stack its telemetry and logger.
type observe struct {
	telemetry func(service string) *telemetry.Telemetry
	logger    func(service string) *slog.Logger
}

func (o *observe) common(s *testStack, service string) (Common, *slog.Logger) {
	c := Common{DataDir: s.dir}
	if o == nil {
		return c, testsupport.QuietLogger()
	}
	c.Telemetry = o.telemetry(service)
	c.dev = true // one machine, one user: /metrics beside every service
	return c, o.logger(service)
}

// newTestStack starts the platform; it needs workerd (npm install). A nil
// o gives the services no telemetry and quiet loggers.
func newTestStack(t *testing.T) *testStack { return newObservedStack(t, nil) }

func newObservedStack(t *testing.T, o *observe) *testStack {
	t.Helper()
	ctx := context.Background()
	s := &testStack{dir: t.TempDir()}

	dbc := DBConfig{}
	var dbLog *slog.Logger
	dbc.Common, dbLog = o.common(s, "db")
	st, err := dbc.OpenStore(ctx, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stop := make(chan struct{})
	dbSrv, err := dbc.Server(dbLog, st, stop)
	if err != nil {
		t.Fatal(err)
	}
	s.dbURL = serve(t, dbSrv)
	t.Cleanup(func() { close(stop) }) // before the server's shutdown: it ends the watches

	ac := AuthConfig{DBURL: s.dbURL}
	var authLog *slog.Logger
	ac.Common, authLog = o.common(s, "auth")
	authSrv, err := ac.Server(authLog)
	if err != nil {
		t.Fatal(err)
	}
	s.authURL = serve(t, authSrv)

	rc := RuntimeConfig{local: newLocalRuntime()}
	var rtLog *slog.Logger
	rc.Common, rtLog = o.common(s, "runtime")
	rt, err := rc.Runtime(ctx, rtLog)
	if err != nil {
		t.Skipf("runtime unavailable (is workerd installed? run npm ci): %v", err)
	}
	s.runtimeURL = serve(t, rc.Server(rtLog, rt))
	t.Cleanup(func() { rt.Close() })
	rc.shareLocal(rt)

	dc := DeployConfig{
		AuthURL:      s.authURL,
		DBURL:        s.dbURL,
		RuntimeURL:   s.runtimeURL,
		Environments: "production=dotdo-production,staging=dotdo-staging",
		Getenv:       func(string) (string, bool) { return "", false },
	}
	var deployLog *slog.Logger
	dc.Common, deployLog = o.common(s, "deploy")
	svc, admin, logs, err := dc.Service(deployLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, deployLog, svc); err != nil {
		t.Fatal(err)
	}
	srv, err := dc.Server(deployLog, svc, admin, logs)
	if err != nil {
		t.Fatal(err)
	}
	s.apiURL = serve(t, srv)

	pc := DispatcherConfig{
		Environment: "production", Namespace: "dotdo-production", DBURL: s.dbURL, RuntimeURL: s.runtimeURL,
		UpstreamTimeout: 30 * time.Second,
	}
	var dispLog *slog.Logger
	pc.Common, dispLog = o.common(s, "dispatcher")
	s.dispatcherURL = serveDispatcher(t, pc, dispLog)
	pc.local = rc.local
	s.localDispatcherURL = serveDispatcher(t, pc, dispLog)

	bootTok, err := (&Common{DataDir: s.dir}).Credential(credential.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if s.adminKey, err = Bootstrap(ctx, s.authURL, bootTok, s.dir); err != nil {
		t.Fatal(err)
	}
	return s
}

// serveDispatcher starts a dispatcher configured by pc.
func serveDispatcher(t *testing.T, pc DispatcherConfig, logger *slog.Logger) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := pc.Dispatcher(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("dispatcher Run: %v", err)
		}
		d.Close()
	})
	srv, err := pc.Server(logger, d)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv)
}
