package boot

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// testCaller is an internal caller that tests use to call every procedure
// of db and auth directly.
const testCaller credential.Caller = "test"

// testPolicy is the default policy plus testCaller, granted everything.
func testPolicy() credential.Policy {
	p := credential.DefaultPolicy()
	for _, sd := range []protoreflect.ServiceDescriptor{
		dbv1.File_dotdo_db_v1_db_proto.Services().ByName("DBService"),
		authv1.File_dotdo_auth_v1_auth_proto.Services().ByName("AuthService"),
	} {
		for i := range sd.Methods().Len() {
			p[testCaller] = append(p[testCaller], credential.Grant{Procedure: "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(i).Name())})
		}
	}
	return p
}

// testCommon is the configuration of a test's internal services with data
// in dir: the default credentials, plus testCaller with token.
func testCommon(dir, token string) Common {
	return Common{DataDir: dir, Credentials: map[credential.Caller]string{testCaller: token}, policy: testPolicy()}
}

// internalStack serves db (SQLite in a temp dir) and auth on loopback and
// returns their URLs and the credential of testCaller.
func internalStack(t *testing.T) (dbURL, authURL, token string) {
	t.Helper()
	token = credential.Generate()
	dbURL, authURL = internalStackIn(t, t.TempDir(), token)
	return dbURL, authURL, token
}

// internalStackIn serves db and auth with their data in dir.
func internalStackIn(t *testing.T, dir, token string) (dbURL, authURL string) {
	t.Helper()
	dbc := DBConfig{Common: testCommon(dir, token)}
	st, err := dbc.OpenStore(context.Background(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stop := make(chan struct{})
	dbSrv, err := dbc.Server(testsupport.QuietLogger(), st, stop)
	if err != nil {
		t.Fatal(err)
	}
	dbURL = serve(t, dbSrv)
	t.Cleanup(func() { close(stop) }) // before the server's shutdown: it ends the watches
	ac := AuthConfig{Common: testCommon(dir, token), DBURL: dbURL}
	authSrv, err := ac.Server(testsupport.QuietLogger())
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

// TestInternalCallersLeastPrivilege: each internal caller's credential
// calls what its grants name and nothing else. In particular the public
// dispatcher's credential reads live deployments only (it cannot mint a
// key through DBService.CreateApiKey, as the one shared credential could),
// and the CLI's bootstrap credential can only bootstrap.
func TestInternalCallersLeastPrivilege(t *testing.T) {
	dir := t.TempDir()
	testTok := credential.Generate()
	dbURL, authURL := internalStackIn(t, dir, testTok)
	ctx := context.Background()
	common := testCommon(dir, testTok)
	clientsOf := func(caller credential.Caller) (dbv1connect.DBServiceClient, authv1connect.AuthServiceClient) {
		t.Helper()
		tok, err := common.Credential(caller)
		if err != nil {
			t.Fatal(err)
		}
		dbc, err := rpc.NewClient(dbv1connect.NewDBServiceClient, dbURL, rpc.WithInternalToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		authc, err := rpc.NewClient(authv1connect.NewAuthServiceClient, authURL, rpc.WithInternalToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		return dbc, authc
	}
	rec := &dbv1.ApiKeyRecord{KeyId: "AAAAAAAAAAAA", Name: "minted", Role: "admin", SecretHash: make([]byte, 32), CreatedBy: "mallory"}
	live := &dbv1.ListDeploymentsRequest{Environment: "production", Status: dbv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE}
	type call struct {
		name string
		do   func(dbv1connect.DBServiceClient, authv1connect.AuthServiceClient) error
	}
	createKey := call{"db.CreateApiKey", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		_, err := d.CreateApiKey(ctx, connect.NewRequest(&dbv1.CreateApiKeyRequest{Record: rec}))
		return err
	}}
	listLive := call{"db.ListDeployments(live)", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		_, err := d.ListDeployments(ctx, connect.NewRequest(live))
		return err
	}}
	listAll := call{"db.ListDeployments(all)", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		_, err := d.ListDeployments(ctx, connect.NewRequest(&dbv1.ListDeploymentsRequest{Environment: "production"}))
		return err
	}}
	watch := call{"db.WatchEnvironment", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := d.WatchEnvironment(wctx, connect.NewRequest(&dbv1.WatchEnvironmentRequest{Environment: "production"}))
		if err != nil {
			return err
		}
		defer stream.Close()
		if !stream.Receive() {
			return stream.Err()
		}
		return nil
	}}
	blob := call{"db.GetScriptBlob", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		_, err := d.GetScriptBlob(ctx, connect.NewRequest(&dbv1.GetScriptBlobRequest{Sha256: strings.Repeat("0", 64)}))
		return err
	}}
	appendAudit := call{"db.AppendAuditEvent", func(d dbv1connect.DBServiceClient, _ authv1connect.AuthServiceClient) error {
		_, err := d.AppendAuditEvent(ctx, connect.NewRequest(&dbv1.AppendAuditEventRequest{Event: &dbv1.AuditEvent{Action: "test.event"}}))
		return err
	}}
	authenticate := call{"auth.Authenticate", func(_ dbv1connect.DBServiceClient, a authv1connect.AuthServiceClient) error {
		_, err := a.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: "dotdo_x"}))
		return err
	}}
	bootstrap := call{"auth.BootstrapAdminKey", func(_ dbv1connect.DBServiceClient, a authv1connect.AuthServiceClient) error {
		_, err := a.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{}))
		return err
	}}
	for _, tc := range []struct {
		caller           credential.Caller
		allowed, refused []call
	}{
		{credential.Dispatcher, []call{watch}, []call{createKey, listLive, listAll, blob, appendAudit, authenticate, bootstrap}},
		{credential.Auth, []call{appendAudit}, []call{watch, listLive, blob, authenticate, bootstrap}},
		{credential.Deploy, []call{listAll, listLive, blob, appendAudit, authenticate}, []call{watch, createKey, bootstrap}},
		{credential.Bootstrap, []call{bootstrap}, []call{createKey, listLive, appendAudit, authenticate}},
	} {
		t.Run(string(tc.caller), func(t *testing.T) {
			dbc, authc := clientsOf(tc.caller)
			// Refused: a procedure the caller's grants do not name
			// (PermissionDenied), or a service that does not know the
			// caller at all (its credential rejected).
			refused := func(err error) bool {
				var cerr *connect.Error
				return errors.As(err, &cerr) && (cerr.Code() == connect.CodePermissionDenied && cerr.Message() == credential.ErrNotGranted.Error() ||
					cerr.Code() == connect.CodeUnauthenticated && cerr.Message() == credential.ErrRejected.Error())
			}
			for _, c := range tc.refused {
				if err := c.do(dbc, authc); !refused(err) {
					t.Errorf("%s with the %s credential = %v, want it refused", c.name, tc.caller, err)
				}
			}
			for _, c := range tc.allowed {
				if err := c.do(dbc, authc); refused(err) {
					t.Errorf("%s with the %s credential = %v, want it allowed", c.name, tc.caller, err)
				}
			}
		})
	}
	// No key was minted behind auth's back; the one bootstrap made is
	// audited by the store.
	dbc, _ := clientsOf(testCaller)
	if _, err := dbc.GetApiKey(ctx, connect.NewRequest(&dbv1.GetApiKeyRequest{KeyId: rec.GetKeyId()})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("the minted key: %v, want NotFound", err)
	}
	res, err := dbc.ListAuditEvents(ctx, connect.NewRequest(&dbv1.ListAuditEventsRequest{Action: "apikey.stored"}))
	if err != nil || len(res.Msg.GetEvents()) != 1 || res.Msg.GetEvents()[0].GetDetails()["op"] != "bootstrap" {
		t.Fatalf("apikey.stored events = %v, %v; want the bootstrap", res.Msg.GetEvents(), err)
	}
}
