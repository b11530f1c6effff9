package boot

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// internalStack serves db (SQLite in a temp dir) and auth on loopback and
// returns their URLs and the internal credential.
func internalStack(t *testing.T) (dbURL, authURL, token string) {
	t.Helper()
	token = credential.Generate()
	dbURL, authURL = internalStackIn(t, t.TempDir(), token)
	return dbURL, authURL, token
}

// internalStackIn serves db and auth with their data in dir.
func internalStackIn(t *testing.T, dir, token string) (dbURL, authURL string) {
	t.Helper()
	dbc := DBConfig{Common: Common{DataDir: dir, InternalToken: token}}
	st, err := dbc.OpenStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stop := make(chan struct{})
	dbSrv, err := dbc.Server(quietLogger(), st, stop)
	if err != nil {
		t.Fatal(err)
	}
	dbURL = serve(t, dbSrv)
	t.Cleanup(func() { close(stop) }) // before the server's shutdown: it ends the watches
	ac := AuthConfig{Common: Common{DataDir: dir, InternalToken: token}, DBURL: dbURL}
	authSrv, err := ac.Server(quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return dbURL, serve(t, authSrv)
}

func TestInternalServicesPlumbing(t *testing.T) {
	dbURL, authURL, token := internalStack(t)
	checkHealth(t, dbURL, dbv1connect.DBServiceName)
	checkHealth(t, authURL, authv1connect.AuthServiceName)

	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			copts, err := rpc.ClientOptions(rpc.WithInternalToken(token))
			if err != nil {
				t.Fatal(err)
			}
			copts = append(copts, p.opts...)
			dbc := dbv1connect.NewDBServiceClient(rpc.HTTPClient(), dbURL, copts...)
			_, err = dbc.GetScriptBlob(ctx, connect.NewRequest(&dbv1.GetScriptBlobRequest{Sha256: "not-hex"}))
			wantInvalidArgument(t, err, "sha256")
			authc := authv1connect.NewAuthServiceClient(rpc.HTTPClient(), authURL, copts...)
			_, err = authc.Authorize(ctx, connect.NewRequest(&authv1.AuthorizeRequest{ApiKey: "x", Permission: "deployments.destroy"}))
			wantInvalidArgument(t, err, "permission")
			// A well-formed request with a bad key: Unauthenticated, one message.
			_, err = authc.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: "dotdo_nope"}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("Authenticate(bad key) = %v, want Unauthenticated", err)
			}
		})
	}
}

// TestInternalServicesRefuseOutsiders: auth and db answer an outside caller
// (no internal credential, or a wrong one) with Unauthenticated before
// looking at the request.
func TestInternalServicesRefuseOutsiders(t *testing.T) {
	dbURL, authURL, _ := internalStack(t)
	for _, tok := range []string{"", "wrong-" + credential.Generate()} {
		var opts []rpc.Option
		if tok != "" {
			opts = append(opts, rpc.WithInternalToken(tok))
		}
		copts, err := rpc.ClientOptions(opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		dbc := dbv1connect.NewDBServiceClient(rpc.HTTPClient(), dbURL, copts...)
		_, err = dbc.ListApiKeys(ctx, connect.NewRequest(&dbv1.ListApiKeysRequest{IncludeRevoked: true}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("db without credential = %v, want Unauthenticated", err)
		}
		authc := authv1connect.NewAuthServiceClient(rpc.HTTPClient(), authURL, copts...)
		_, err = authc.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("auth without credential = %v, want Unauthenticated", err)
		}
	}
}

// TestRemoteStoreConformance runs the store conformance suite through the
// DBService: remote client -> Connect -> handler -> SQLite. It checks the
// conversions and the error mapping in both directions.
func TestRemoteStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dbURL, _, token := internalStack(t)
		client, err := rpc.NewClient(dbv1connect.NewDBServiceClient, dbURL, rpc.WithInternalToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return remote.New(client)
	})
}
