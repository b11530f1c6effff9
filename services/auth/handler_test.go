package auth_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

// rpcStack serves AuthService over real Connect (HTTP/2 cleartext, the
// platform's interceptors, the internal credential) on an in-memory store.
func rpcStack(t *testing.T) (authv1connect.AuthServiceClient, string) {
	t.Helper()
	token := credential.Generate()
	svc := auth.New(sqlitetest.Open(t), auth.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	// One test caller granted every AuthService procedure.
	sd := authv1.File_dotdo_auth_v1_auth_proto.Services().ByName("AuthService")
	var grants []credential.Grant
	for i := range sd.Methods().Len() {
		grants = append(grants, credential.Grant{Procedure: "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(i).Name())})
	}
	v := credential.NewVerifier(credential.Policy{"test": grants}, map[credential.Caller]string{"test": token}, nil)
	opts, err := rpc.HandlerOptions(rpc.WithVerifier(v))
	if err != nil {
		t.Fatal(err)
	}
	_, h := authv1connect.NewAuthServiceHandler(auth.NewHandler(svc), opts...)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.Start()
	t.Cleanup(srv.Close)
	copts, err := rpc.ClientOptions(rpc.WithInternalToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return authv1connect.NewAuthServiceClient(srv.Client(), srv.URL, copts...), token
}

// as sends a call on behalf of the operator key in Authorization.
func as[T any](key string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+key)
	return req
}

// TestRPCsByRoleAndScope drives every AuthService RPC with a key of every
// role and environment scope, and checks allowed against PermissionDenied.
func TestRPCsByRoleAndScope(t *testing.T) {
	ctx := context.Background()
	client, _ := rpcStack(t)
	boot, err := client.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	admin := boot.Msg.GetSecret()
	if _, err := client.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{})); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("second bootstrap = %v, want AlreadyExists", err)
	}

	roles := []authv1.Role{authv1.Role_ROLE_ADMIN, authv1.Role_ROLE_DEPLOYER, authv1.Role_ROLE_VIEWER}
	scopes := [][]string{nil, {"staging"}}
	// What each role may do, from the policy.
	grants := map[authv1.Role]map[string]bool{
		authv1.Role_ROLE_ADMIN: {"deployments.create": true, "deployments.rollback": true, "deployments.read": true, "keys.manage": true,
			"namespaces.manage": true, "audit.read": true, "routes.read": true, "routes.write": true,
			"secrets.read": true, "secrets.write": true},
		authv1.Role_ROLE_DEPLOYER: {"deployments.create": true, "deployments.rollback": true, "deployments.read": true, "routes.read": true,
			"secrets.read": true, "secrets.write": true},
		authv1.Role_ROLE_VIEWER: {"deployments.read": true, "routes.read": true, "secrets.read": true},
	}
	perms := []string{"deployments.create", "deployments.rollback", "deployments.read", "keys.manage", "namespaces.manage", "audit.read",
		"routes.read", "routes.write", "secrets.read", "secrets.write"}
	for _, role := range roles {
		for _, scope := range scopes {
			name := fmt.Sprintf("%s/%v", role, scope)
			t.Run(name, func(t *testing.T) {
				created, err := client.CreateApiKey(ctx, as(admin, &authv1.CreateApiKeyRequest{Name: name, Role: role, Environments: scope}))
				if err != nil {
					t.Fatal(err)
				}
				key := created.Msg.GetSecret()
				res, err := client.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: key}))
				if err != nil || res.Msg.GetPrincipal().GetRole() != role {
					t.Fatalf("Authenticate = %v, %v", res, err)
				}
				for _, perm := range perms {
					for _, env := range []string{"production", "staging"} {
						_, err := client.Authorize(ctx, connect.NewRequest(&authv1.AuthorizeRequest{ApiKey: key, Permission: perm, Environment: env}))
						scoped := perm != "keys.manage" && perm != "audit.read"
						want := grants[role][perm] && (!scoped || scope == nil || env == "staging")
						if got := err == nil; got != want {
							t.Errorf("Authorize(%s, %s) = %v, want allowed=%t", perm, env, err, want)
						}
						if err != nil && connect.CodeOf(err) != connect.CodePermissionDenied {
							t.Errorf("Authorize(%s, %s) = %v, want PermissionDenied", perm, env, err)
						}
					}
				}
				// Key management on behalf of this key.
				manage := grants[role]["keys.manage"]
				check := func(op string, err error) {
					t.Helper()
					if manage && err != nil {
						t.Errorf("%s as %s: %v", op, name, err)
					}
					if !manage && connect.CodeOf(err) != connect.CodePermissionDenied {
						t.Errorf("%s as %s = %v, want PermissionDenied", op, name, err)
					}
				}
				_, err = client.ListApiKeys(ctx, as(key, &authv1.ListApiKeysRequest{}))
				check("ListAPIKeys", err)
				victim, err := client.CreateApiKey(ctx, as(key, &authv1.CreateApiKeyRequest{Name: "victim", Role: authv1.Role_ROLE_VIEWER, Environments: []string{"staging"}}))
				check("CreateAPIKey", err)
				var victimID string
				if manage {
					victimID = victim.Msg.GetApiKey().GetKeyId()
				} else {
					made, err := client.CreateApiKey(ctx, as(admin, &authv1.CreateApiKeyRequest{Name: "victim", Role: authv1.Role_ROLE_VIEWER, Environments: []string{"staging"}}))
					if err != nil {
						t.Fatal(err)
					}
					victimID = made.Msg.GetApiKey().GetKeyId()
				}
				_, err = client.RotateApiKey(ctx, as(key, &authv1.RotateApiKeyRequest{KeyId: victimID, GracePeriod: durationpb.New(0)}))
				check("RotateAPIKey", err)
				_, err = client.RevokeApiKey(ctx, as(key, &authv1.RevokeApiKeyRequest{KeyId: victimID}))
				check("RevokeAPIKey", err)
			})
		}
	}
}

// TestUnauthenticatedIsUniform: missing, malformed, unknown and revoked keys
// get the same code and message.
func TestUnauthenticatedIsUniform(t *testing.T) {
	ctx := context.Background()
	client, _ := rpcStack(t)
	boot, err := client.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	admin := boot.Msg.GetSecret()
	made, err := client.CreateApiKey(ctx, as(admin, &authv1.CreateApiKeyRequest{Name: "doomed", Role: authv1.Role_ROLE_DEPLOYER}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.RevokeApiKey(ctx, as(admin, &authv1.RevokeApiKeyRequest{KeyId: made.Msg.GetApiKey().GetKeyId()})); err != nil {
		t.Fatal(err)
	}
	unknown := admin[:len("dotdo_")] + "AAAAAAAAAAAA" + admin[len("dotdo_")+12:]
	var msgs []string
	for _, key := range []string{"", "dotdo_malformed", unknown, made.Msg.GetSecret()} {
		_, err := client.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: key, Client: "test"}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("Authenticate = %v, want Unauthenticated", err)
		}
		msgs = append(msgs, err.(*connect.Error).Message())
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("messages differ: %q", msgs)
		}
	}
}
