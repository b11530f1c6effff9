// Package auth is the authentication and authorization domain of the Deploy
// API: API keys (format in package apikey), role-based access control,
// authentication with a short-lived cache and failed-attempt throttling, and
// key life-cycle management (create, list, revoke, rotate, bootstrap).
//
// The package has no transport dependencies. Its vocabulary for callers
// (permissions, roles' grants, Principal, PermissionError) is package
// authz; key records are store.APIKey. The Connect handler calls Service,
// whose errors carry kinds of package errkind that the RPC edge maps to
// Connect codes. Persistence (key records and audit events) goes through
// the Store interface, which the platform implements in process (SQLite or
// PostgreSQL) or over the DB service (services/db/remote).
//
// Typical request path:
//
//	p, err := svc.Authorize(ctx, bearerToken, authz.PermDeploymentsCreate, "production", remoteIP)
//	// err: ErrThrottled / ErrUnauthenticated / *authz.PermissionError / store failure
//
// # Policy
//
// Roles and permissions are documented in package authz. Key management
// additionally requires the acting key to cover (authz.Principal.Covers)
// the environments of the keys it creates or manages.
//
// # Security properties
//
//   - Secrets are 256-bit random values; only SHA-256 (or HMAC-SHA-256 with a
//     pepper, WithPepper) of them is stored, compared in constant time.
//   - Malformed tokens are rejected by checksum before any storage access.
//   - Every authentication failure returns the same ErrUnauthenticated; why
//     it failed (missing, malformed, unknown, wrong secret, expired, revoked)
//     is recorded only in the audit log.
//   - No token, secret or hash is ever put in an error, log line, audit
//     event or String/LogValue output.
//   - Cached validations live at most the cache TTL (default 10 s), which
//     bounds how long a revocation made elsewhere may go unnoticed;
//     revocations through the same Service are immediate.
//   - After 10 failures within a minute a client is blocked for a minute
//     (DefaultThrottle), with bounded memory.
package auth
