package boot

import (
	"context"
	"net"
	"testing"

	"github.com/dot-do/platform/internal/credential"
)

// testStack is the whole platform (db on SQLite, auth, runtime with workerd,
// deploy on the runtime) on loopback ports, for tests.
type testStack struct {
	dir                                string
	token                              string
	dbURL, authURL, runtimeURL, apiURL string
	adminKey                           string
}

// listen reserves a loopback port for a server that is configured with an
// address before it listens.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// newTestStack starts the platform; it needs workerd (npm install).
func newTestStack(t *testing.T) *testStack {
	t.Helper()
	ctx := context.Background()
	s := &testStack{dir: t.TempDir(), token: credential.Generate()}
	s.dbURL, s.authURL = internalStackIn(t, s.dir, s.token)

	rc := RuntimeConfig{Common: Common{DataDir: s.dir, InternalToken: s.token}}
	rt, err := rc.Runtime(ctx, quietLogger())
	if err != nil {
		t.Skipf("runtime unavailable (is workerd installed? run npm ci): %v", err)
	}
	s.runtimeURL = serve(t, rc.Server(quietLogger(), rt))
	t.Cleanup(func() { rt.Close() })

	dc := DeployConfig{
		Common:       Common{DataDir: s.dir, InternalToken: s.token},
		AuthURL:      s.authURL,
		DBURL:        s.dbURL,
		RuntimeURL:   s.runtimeURL,
		Environments: "production=dotdo-production,staging=dotdo-staging",
		Getenv:       func(string) (string, bool) { return "", false },
	}
	svc, admin, err := dc.Service(quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := Prepare(ctx, quietLogger(), svc); err != nil {
		t.Fatal(err)
	}
	srv, err := dc.Server(quietLogger(), svc, admin)
	if err != nil {
		t.Fatal(err)
	}
	s.apiURL = serve(t, srv)
	if s.adminKey, err = Bootstrap(ctx, s.authURL, s.token, s.dir); err != nil {
		t.Fatal(err)
	}
	return s
}
