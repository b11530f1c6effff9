// Package authz is the auth service's vocabulary for its callers: the
// permissions an API key's role grants (the RBAC policy), the Principal an
// authenticated key becomes, the error of a denied permission, and the
// conversions of these to and from the AuthService protos. Services that
// call auth (deploy) import this package and the key format (package
// apikey), never the auth service's internals; API key records themselves
// are store.APIKey, the one key model of the platform.
//
// # Policy
//
//	permission             admin  deployer  viewer   environment-scoped
//	deployments.create       x       x                 yes
//	deployments.rollback     x       x                 yes
//	deployments.read         x       x        x        yes
//	namespaces.manage        x                         yes
//	routes.read              x       x        x        yes
//	routes.write             x                         yes
//	keys.manage              x                         no
//	audit.read               x                         no
//	logs.read                x       x        x        yes
//	secrets.read             x       x        x        yes
//	secrets.write            x       x                 yes
//
// secrets.read lists the names of a worker's secrets and when they were
// set, never their values (no permission returns a value); secrets.write
// puts and deletes them, as a deployer does with the worker's code.
//
// routes.write changes what every worker of an environment serves (its
// routing table, and the dispatch Worker that carries it to Cloudflare),
// so it is an administrator's; every role may read the routes.
//
// viewer deliberately lacks audit.read: the audit log contains client
// addresses and key-management history, which is administrative data. A
// key may be limited to a set of environments (empty = all).
// Environment-scoped permissions are checked against the requested
// environment; keys.manage and audit.read are global and their checks pass
// environment "".
package authz

import (
	"slices"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

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
	// PermLogsRead allows tailing workers' invocations (live logs).
	PermLogsRead Permission = "logs.read"
	// PermRoutesRead allows reading an environment's routing table, its
	// history and its dispatch Worker (built or deployed).
	PermRoutesRead Permission = "routes.read"
	// PermRoutesWrite allows setting and rolling back an environment's
	// routing table, and deploying and rolling back its dispatch Worker.
	PermRoutesWrite Permission = "routes.write"
	// PermSecretsRead allows listing the names of workers' secrets (never
	// their values).
	PermSecretsRead Permission = "secrets.read"
	// PermSecretsWrite allows putting and deleting workers' secrets.
	PermSecretsWrite Permission = "secrets.write"
)

var allPermissions = []Permission{
	PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead,
	PermKeysManage, PermNamespacesManage, PermAuditRead, PermLogsRead,
	PermRoutesRead, PermRoutesWrite, PermSecretsRead, PermSecretsWrite,
}

var rolePermissions = map[store.Role][]Permission{
	store.RoleAdmin: {PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead, PermKeysManage, PermNamespacesManage, PermAuditRead,
		PermLogsRead, PermRoutesRead, PermRoutesWrite, PermSecretsRead, PermSecretsWrite},
	store.RoleDeployer: {PermDeploymentsCreate, PermDeploymentsRollback, PermDeploymentsRead, PermLogsRead, PermRoutesRead,
		PermSecretsRead, PermSecretsWrite},
	store.RoleViewer: {PermDeploymentsRead, PermLogsRead, PermRoutesRead, PermSecretsRead},
}

// AllPermissions returns every permission (a fresh slice).
func AllPermissions() []Permission { return slices.Clone(allPermissions) }

// ParsePermission converts a string such as "deployments.create" to a
// Permission, or returns an error of kind errkind.Invalid.
func ParsePermission(s string) (Permission, error) {
	p := Permission(s)
	if !p.Valid() {
		return "", errkind.Errorf(errkind.Invalid, "unknown permission %q", s)
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

// AllRoles returns every role, most privileged first (a fresh slice).
func AllRoles() []store.Role {
	return []store.Role{store.RoleAdmin, store.RoleDeployer, store.RoleViewer}
}

// ParseRole converts a string ("admin", "deployer", "viewer"; exact,
// lower-case) to a role, or returns an error of kind errkind.Invalid.
func ParseRole(s string) (store.Role, error) {
	r := store.Role(s)
	if !r.Valid() {
		return "", errkind.Errorf(errkind.Invalid, "unknown role %q (want one of admin, deployer, viewer)", s)
	}
	return r, nil
}

// Permissions returns the permissions granted to r (nil for an unknown
// role), as a fresh slice.
func Permissions(r store.Role) []Permission { return slices.Clone(rolePermissions[r]) }

// Grants reports whether r grants p. Unknown roles and permissions grant
// nothing.
func Grants(r store.Role, p Permission) bool { return slices.Contains(rolePermissions[r], p) }
