package auth

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Role is the coarse-grained role carried by an API key.
type Role string

// The roles. The policy (see Role.Permissions) is:
//
//	permission             admin  deployer  viewer   environment-scoped
//	deployments.create       x       x                 yes
//	deployments.rollback     x       x                 yes
//	deployments.read         x       x        x        yes
//	namespaces.manage        x                         yes
//	keys.manage              x                         no
//	audit.read               x                         no
//
// viewer deliberately lacks audit.read: the audit log contains client
// addresses and key-management history, which is administrative data.
const (
	// RoleAdmin holds every permission.
	RoleAdmin Role = "admin"
	// RoleDeployer can create, roll back and read deployments.
	RoleDeployer Role = "deployer"
	// RoleViewer can only read deployments.
	RoleViewer Role = "viewer"
)

// AllRoles returns every role, most privileged first (a fresh slice).
func AllRoles() []Role { return []Role{RoleAdmin, RoleDeployer, RoleViewer} }

// ParseRole converts a string ("admin", "deployer", "viewer"; exact,
// lower-case) to a Role. Anything else yields an error wrapping
// ErrInvalidArgument.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", invalidArg("unknown role %q (want one of admin, deployer, viewer)", s)
	}
	return r, nil
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleDeployer || r == RoleViewer
}

// String returns the role name.
func (r Role) String() string { return string(r) }

// Permissions returns the permissions granted to r (nil for an unknown role).
// The returned slice is a fresh copy.
func (r Role) Permissions() []Permission {
	return slices.Clone(rolePermissions[r])
}

// Has reports whether r grants p. Unknown roles and permissions grant nothing.
func (r Role) Has(p Permission) bool {
	return slices.Contains(rolePermissions[r], p)
}

// Permission is a fine-grained capability checked by Authorize.
type Permission string

// The permissions.
const (
	// PermDeploymentsCreate allows creating (uploading) deployments.
	PermDeploymentsCreate Permission = "deployments.create"
	// PermDeploymentsRollback allows rolling back to an earlier deployment.
	PermDeploymentsRollback Permission = "deployments.rollback"
	// PermDeploymentsRead allows listing and reading deployments.
	PermDeploymentsRead Permission = "deployments.read"
	// PermKeysManage allows creating, listing, rotating and revoking API keys.
	PermKeysManage Permission = "keys.manage"
	// PermNamespacesManage allows creating and deleting dispatch namespaces.
	PermNamespacesManage Permission = "namespaces.manage"
	// PermAuditRead allows reading the audit log.
	PermAuditRead Permission = "audit.read"
)

// AllPermissions returns every permission (a fresh slice).
func AllPermissions() []Permission { return slices.Clone(allPermissions) }

var allPermissions = []Permission{
	PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead,
	PermKeysManage, PermNamespacesManage, PermAuditRead,
}

var rolePermissions = map[Role][]Permission{
	RoleAdmin:    {PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead, PermKeysManage, PermNamespacesManage, PermAuditRead},
	RoleDeployer: {PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead},
	RoleViewer:   {PermDeploymentsRead},
}

// ParsePermission converts a string such as "deployments.create" to a
// Permission, or returns an error wrapping ErrInvalidArgument.
func ParsePermission(s string) (Permission, error) {
	p := Permission(s)
	if !p.Valid() {
		return "", invalidArg("unknown permission %q", s)
	}
	return p, nil
}

// Valid reports whether p is one of the defined permissions.
func (p Permission) Valid() bool { return slices.Contains(allPermissions, p) }

// String returns the permission name.
func (p Permission) String() string { return string(p) }

// EnvironmentScoped reports whether checks of p take an environment into
// account. Deployment and namespace permissions are scoped; keys.manage and
// audit.read are global and their checks ignore the environment (pass "").
func (p Permission) EnvironmentScoped() bool {
	switch p {
	case PermKeysManage, PermAuditRead:
		return false
	}
	return true
}

// Principal is the identity of an authenticated API key.
type Principal struct {
	// KeyID is the public id of the key.
	KeyID string
	// Name is the human-readable key name.
	Name string
	// Role is the key's role.
	Role Role
	// Environments limits the key to these environments; empty means all.
	// Treat it as read-only.
	Environments []string
}

// String returns a short description without any secret, e.g.
// `key "abc" (deployer; staging)`.
func (p Principal) String() string {
	scope := "all environments"
	if len(p.Environments) > 0 {
		scope = strings.Join(p.Environments, ",")
	}
	return fmt.Sprintf("key %q (%s; %s)", p.KeyID, p.Role, scope)
}

// LogValue implements slog.LogValuer.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_id", p.KeyID),
		slog.String("role", string(p.Role)),
		slog.Any("environments", p.Environments),
	)
}

// AllowsEnvironment reports whether the key's environment scope includes env.
// An unrestricted key allows every environment, including "" (meaning "all
// environments / not environment-specific"); a restricted key never allows "".
func (p Principal) AllowsEnvironment(env string) bool {
	if len(p.Environments) == 0 {
		return true
	}
	return env != "" && slices.Contains(p.Environments, env)
}

// Covers reports whether p's environment scope includes all of envs, where an
// empty envs means "all environments". A key manager may only manage keys it
// covers, so a staging-only admin can not mint or revoke production keys.
func (p Principal) Covers(envs []string) bool {
	if len(p.Environments) == 0 {
		return true
	}
	if len(envs) == 0 {
		return false
	}
	for _, e := range envs {
		if !slices.Contains(p.Environments, e) {
			return false
		}
	}
	return true
}

// Check returns nil if p may use permission perm on environment env, and a
// *PermissionError (wrapping ErrPermissionDenied) otherwise. For permissions
// that are not environment-scoped, env is ignored; callers pass "". For
// scoped permissions, env "" means "across all environments" and is allowed
// only for unrestricted keys.
func (p Principal) Check(perm Permission, env string) error {
	if !perm.Valid() || !p.Role.Has(perm) {
		return &PermissionError{KeyID: p.KeyID, Role: p.Role, Permission: perm}
	}
	if perm.EnvironmentScoped() && !p.AllowsEnvironment(env) {
		return &PermissionError{KeyID: p.KeyID, Role: p.Role, Permission: perm, Environment: env, EnvironmentDenied: true}
	}
	return nil
}
