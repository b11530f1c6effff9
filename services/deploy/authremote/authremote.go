// Package authremote implements the deploy service's Authorizer and
// KeyManager over the AuthService, the way deploy reaches auth in the
// platform: Connect calls carrying the internal credential, and, for key
// management, the operator's own key forwarded as its bearer token. Errors
// come back with the auth service's codes and are given the error kinds of
// those codes, so callers test them with errors.Is(err, errkind.X) as they
// would in process.
package authremote

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/internal/rpcerr"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
)

// Client is a deploy.Authorizer and deploy.KeyManager that calls an
// AuthService.
type Client struct {
	c authv1connect.AuthServiceClient
}

var (
	_ deploy.Authorizer = (*Client)(nil)
	_ deploy.KeyManager = (*Client)(nil)
)

// New returns a Client calling c.
func New(c authv1connect.AuthServiceClient) *Client { return &Client{c: c} }

// wrap keeps the Connect error (so its code and message reach deploy's
// caller) and gives the error the kind of its code.
func wrap(err error) error { return rpcerr.FromConnect("auth", err) }

// Authenticate implements deploy.Authorizer.
func (c *Client) Authenticate(ctx context.Context, token, client string) (authz.Principal, error) {
	res, err := c.c.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: token, Client: client}))
	if err != nil {
		return authz.Principal{}, wrap(err)
	}
	return authz.PrincipalFromProto(res.Msg.GetPrincipal()), nil
}

// Authorize implements deploy.Authorizer.
func (c *Client) Authorize(ctx context.Context, token string, perm authz.Permission, env, client string) (authz.Principal, error) {
	res, err := c.c.Authorize(ctx, connect.NewRequest(&authv1.AuthorizeRequest{
		ApiKey: token, Permission: string(perm), Environment: env, Client: client,
	}))
	if err != nil {
		return authz.Principal{}, wrap(err)
	}
	return authz.PrincipalFromProto(res.Msg.GetPrincipal()), nil
}

// as makes a request on behalf of the operator: its key as the bearer
// token.
func as[T any](op deploy.Operator, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+op.Token)
	return req
}

// CreateKey implements deploy.KeyManager.
func (c *Client) CreateKey(ctx context.Context, op deploy.Operator, spec deploy.KeySpec) (apikey.Key, store.APIKey, error) {
	req := &authv1.CreateApiKeyRequest{Name: spec.Name, Role: authz.RoleToProto(spec.Role), Environments: spec.Environments}
	if spec.TTL > 0 {
		req.Ttl = durationpb.New(spec.TTL)
	}
	res, err := c.c.CreateApiKey(ctx, as(op, req))
	if err != nil {
		return apikey.Key{}, store.APIKey{}, wrap(err)
	}
	key, err := apikey.Parse(res.Msg.GetSecret())
	if err != nil {
		return apikey.Key{}, store.APIKey{}, fmt.Errorf("auth returned a malformed key: %w", err)
	}
	return key, authz.KeyFromProto(res.Msg.GetApiKey()), nil
}

// ListKeys implements deploy.KeyManager.
func (c *Client) ListKeys(ctx context.Context, op deploy.Operator, includeRevoked bool) ([]store.APIKey, error) {
	res, err := c.c.ListApiKeys(ctx, as(op, &authv1.ListApiKeysRequest{IncludeRevoked: includeRevoked}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]store.APIKey, len(res.Msg.GetApiKeys()))
	for i, k := range res.Msg.GetApiKeys() {
		out[i] = authz.KeyFromProto(k)
	}
	return out, nil
}

// RevokeKey implements deploy.KeyManager.
func (c *Client) RevokeKey(ctx context.Context, op deploy.Operator, keyID string) (store.APIKey, error) {
	res, err := c.c.RevokeApiKey(ctx, as(op, &authv1.RevokeApiKeyRequest{KeyId: keyID}))
	if err != nil {
		return store.APIKey{}, wrap(err)
	}
	return authz.KeyFromProto(res.Msg.GetApiKey()), nil
}

// RotateKey implements deploy.KeyManager.
func (c *Client) RotateKey(ctx context.Context, op deploy.Operator, keyID string, grace time.Duration) (deploy.RotatedKey, error) {
	req := &authv1.RotateApiKeyRequest{KeyId: keyID}
	if grace > 0 {
		req.GracePeriod = durationpb.New(grace)
	}
	res, err := c.c.RotateApiKey(ctx, as(op, req))
	if err != nil {
		return deploy.RotatedKey{}, wrap(err)
	}
	key, err := apikey.Parse(res.Msg.GetSecret())
	if err != nil {
		return deploy.RotatedKey{}, fmt.Errorf("auth returned a malformed key: %w", err)
	}
	return deploy.RotatedKey{Key: key, Record: authz.KeyFromProto(res.Msg.GetApiKey()), Previous: authz.KeyFromProto(res.Msg.GetPrevious())}, nil
}
