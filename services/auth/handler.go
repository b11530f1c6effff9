package auth

import (
	"context"
	"net"
	"strings"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/services/auth/authz"
)

// handler serves AuthService from a Service. Requests are validated by the
// protovalidate interceptor before these methods run, and errors map to
// Connect codes in internal/rpcerr.
type handler struct {
	svc *Service
}

var _ authv1connect.AuthServiceHandler = (*handler)(nil)

// NewHandler returns the AuthService handler backed by svc.
func NewHandler(svc *Service) authv1connect.AuthServiceHandler { return &handler{svc: svc} }

// BearerToken returns the key in an `Authorization: Bearer <key>` header, or
// "" when there is none.
func BearerToken(h interface{ Get(string) string }) string {
	v := h.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// PeerClient returns the host of a peer address such as "127.0.0.1:5000",
// the client id under which failed attempts are throttled.
func PeerClient(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// operator authorizes the key forwarded in the Authorization header for
// managing keys.
func (h *handler) operator(ctx context.Context, req connect.AnyRequest) (authz.Principal, error) {
	return h.svc.Authorize(ctx, BearerToken(req.Header()), authz.PermKeysManage, "", PeerClient(req.Peer().Addr))
}

func (h *handler) Authenticate(ctx context.Context, req *connect.Request[authv1.AuthenticateRequest]) (*connect.Response[authv1.AuthenticateResponse], error) {
	p, err := h.svc.Authenticate(ctx, req.Msg.GetApiKey(), req.Msg.GetClient())
	h.svc.metrics.attempt(ctx, err)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.AuthenticateResponse{Principal: authz.PrincipalToProto(p)}), nil
}

func (h *handler) Authorize(ctx context.Context, req *connect.Request[authv1.AuthorizeRequest]) (*connect.Response[authv1.AuthorizeResponse], error) {
	// The proto checks the permission's form; whether it exists is known
	// here, before the key is looked at.
	perm, err := authz.ParsePermission(req.Msg.GetPermission())
	if err != nil {
		return nil, err
	}
	p, err := h.svc.Authorize(ctx, req.Msg.GetApiKey(), perm, req.Msg.GetEnvironment(), req.Msg.GetClient())
	h.svc.metrics.attempt(ctx, err)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.AuthorizeResponse{Principal: authz.PrincipalToProto(p)}), nil
}

func (h *handler) CreateApiKey(ctx context.Context, req *connect.Request[authv1.CreateApiKeyRequest]) (*connect.Response[authv1.CreateApiKeyResponse], error) {
	op, err := h.operator(ctx, req)
	if err != nil {
		return nil, err
	}
	key, rec, err := h.svc.CreateKey(ctx, op, req.Msg.GetName(), authz.RoleFromProto(req.Msg.GetRole()), req.Msg.GetEnvironments(), req.Msg.GetTtl().AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.CreateApiKeyResponse{ApiKey: authz.KeyToProto(rec), Secret: key.Token}), nil
}

func (h *handler) ListApiKeys(ctx context.Context, req *connect.Request[authv1.ListApiKeysRequest]) (*connect.Response[authv1.ListApiKeysResponse], error) {
	op, err := h.operator(ctx, req)
	if err != nil {
		return nil, err
	}
	recs, err := h.svc.ListKeys(ctx, op, req.Msg.GetIncludeRevoked())
	if err != nil {
		return nil, err
	}
	out := make([]*authv1.ApiKey, len(recs))
	for i, r := range recs {
		out[i] = authz.KeyToProto(r)
	}
	return connect.NewResponse(&authv1.ListApiKeysResponse{ApiKeys: out}), nil
}

func (h *handler) RevokeApiKey(ctx context.Context, req *connect.Request[authv1.RevokeApiKeyRequest]) (*connect.Response[authv1.RevokeApiKeyResponse], error) {
	op, err := h.operator(ctx, req)
	if err != nil {
		return nil, err
	}
	rec, err := h.svc.RevokeKey(ctx, op, req.Msg.GetKeyId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.RevokeApiKeyResponse{ApiKey: authz.KeyToProto(rec)}), nil
}

func (h *handler) RotateApiKey(ctx context.Context, req *connect.Request[authv1.RotateApiKeyRequest]) (*connect.Response[authv1.RotateApiKeyResponse], error) {
	op, err := h.operator(ctx, req)
	if err != nil {
		return nil, err
	}
	key, rec, prev, err := h.svc.RotateKey(ctx, op, req.Msg.GetKeyId(), req.Msg.GetGracePeriod().AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.RotateApiKeyResponse{ApiKey: authz.KeyToProto(rec), Secret: key.Token, Previous: authz.KeyToProto(prev)}), nil
}

func (h *handler) BootstrapAdminKey(ctx context.Context, req *connect.Request[authv1.BootstrapAdminKeyRequest]) (*connect.Response[authv1.BootstrapAdminKeyResponse], error) {
	name := req.Msg.GetName()
	if name == "" {
		name = "bootstrap admin"
	}
	key, rec, err := h.svc.Bootstrap(ctx, name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.BootstrapAdminKeyResponse{ApiKey: authz.KeyToProto(rec), Secret: key.Token}), nil
}
