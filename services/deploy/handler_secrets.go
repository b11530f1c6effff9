package deploy

import (
	"context"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/pbtime"
)

// NewSecretsHandler returns the SecretService handler over svc. Mount it
// with deployv1connect.NewSecretServiceHandler and rpc.HandlerOptions.
func NewSecretsHandler(svc *Service) deployv1connect.SecretServiceHandler {
	return &secretsHandler{svc: svc}
}

type secretsHandler struct{ svc *Service }

var _ deployv1connect.SecretServiceHandler = (*secretsHandler)(nil)

// PutSecret implements deployv1connect.SecretServiceHandler.
func (h *secretsHandler) PutSecret(ctx context.Context, req *connect.Request[deployv1.PutSecretRequest]) (*connect.Response[deployv1.PutSecretResponse], error) {
	m := req.Msg
	info, created, err := h.svc.PutSecret(ctx, callerOf(req), SecretInput{
		Service: m.GetService(), Environment: m.GetEnvironment(), Name: m.GetName(), Value: m.GetValue(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.PutSecretResponse{Secret: secretProto(info), Created: created}), nil
}

// ListSecrets implements deployv1connect.SecretServiceHandler.
func (h *secretsHandler) ListSecrets(ctx context.Context, req *connect.Request[deployv1.ListSecretsRequest]) (*connect.Response[deployv1.ListSecretsResponse], error) {
	list, err := h.svc.ListSecrets(ctx, callerOf(req), req.Msg.GetService(), req.Msg.GetEnvironment())
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListSecretsResponse{Secrets: make([]*deployv1.Secret, len(list))}
	for i, s := range list {
		out.Secrets[i] = secretProto(s)
	}
	return connect.NewResponse(out), nil
}

// DeleteSecret implements deployv1connect.SecretServiceHandler.
func (h *secretsHandler) DeleteSecret(ctx context.Context, req *connect.Request[deployv1.DeleteSecretRequest]) (*connect.Response[deployv1.DeleteSecretResponse], error) {
	if err := h.svc.DeleteSecret(ctx, callerOf(req), req.Msg.GetService(), req.Msg.GetEnvironment(), req.Msg.GetName()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.DeleteSecretResponse{}), nil
}

func secretProto(s SecretInfo) *deployv1.Secret {
	out := &deployv1.Secret{Name: s.Name}
	if !s.UpdatedAt.IsZero() {
		out.UpdatedAt = pbtime.To(s.UpdatedAt)
	}
	return out
}
