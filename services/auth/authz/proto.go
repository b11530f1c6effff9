package authz

import (
	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/services/db/store"
)

var roleToProto = map[store.Role]authv1.Role{
	store.RoleAdmin:    authv1.Role_ROLE_ADMIN,
	store.RoleDeployer: authv1.Role_ROLE_DEPLOYER,
	store.RoleViewer:   authv1.Role_ROLE_VIEWER,
}

// RoleToProto converts a role; ROLE_UNSPECIFIED for an unknown one.
func RoleToProto(r store.Role) authv1.Role { return roleToProto[r] }

// RoleFromProto converts a proto role; "" for ROLE_UNSPECIFIED.
func RoleFromProto(r authv1.Role) store.Role {
	for k, v := range roleToProto {
		if v == r {
			return k
		}
	}
	return ""
}

// PrincipalToProto converts a principal.
func PrincipalToProto(p Principal) *authv1.Principal {
	return &authv1.Principal{KeyId: p.KeyID, Name: p.Name, Role: RoleToProto(p.Role), Environments: p.Environments, ExpiresAt: pbtime.To(p.ExpiresAt)}
}

// PrincipalFromProto converts a principal message.
func PrincipalFromProto(p *authv1.Principal) Principal {
	return Principal{KeyID: p.GetKeyId(), Name: p.GetName(), Role: RoleFromProto(p.GetRole()), Environments: p.GetEnvironments(),
		ExpiresAt: pbtime.From(p.GetExpiresAt())}
}

// KeyToProto converts a key record, without its secret hash.
func KeyToProto(k store.APIKey) *authv1.ApiKey {
	return &authv1.ApiKey{
		KeyId:        k.KeyID,
		Name:         k.Name,
		Role:         RoleToProto(k.Role),
		Environments: k.Environments,
		CreatedAt:    pbtime.To(k.CreatedAt),
		CreatedBy:    k.CreatedBy,
		ExpiresAt:    pbtime.To(k.ExpiresAt),
		RevokedAt:    pbtime.To(k.RevokedAt),
		LastUsedAt:   pbtime.To(k.LastUsedAt),
		ReplacedBy:   k.ReplacedBy,
	}
}

// KeyFromProto converts a key message (which never carries a secret hash).
func KeyFromProto(k *authv1.ApiKey) store.APIKey {
	return store.APIKey{
		KeyID:        k.GetKeyId(),
		Name:         k.GetName(),
		Role:         RoleFromProto(k.GetRole()),
		Environments: k.GetEnvironments(),
		CreatedAt:    pbtime.From(k.GetCreatedAt()),
		CreatedBy:    k.GetCreatedBy(),
		ExpiresAt:    pbtime.From(k.GetExpiresAt()),
		RevokedAt:    pbtime.From(k.GetRevokedAt()),
		LastUsedAt:   pbtime.From(k.GetLastUsedAt()),
		ReplacedBy:   k.GetReplacedBy(),
	}
}
