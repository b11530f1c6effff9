// Package auth is the authentication and authorization domain of the Deploy
// API: API keys (format in package apikey), role-based access control,
// authentication with a short-lived cache and failed-attempt throttling, and
// key life-cycle management (create, list, revoke, rotate, bootstrap).
//
// The package has no transport dependencies. The Connect handlers call
// Service and map its sentinel errors (see ErrUnauthenticated and friends) to
// Connect codes; persistence goes through the KeyStore interface and audit
// events through AuditSink, both implemented by the platform over the DB
// service. MemStore is the in-process KeyStore used by tests.
//
// Typical request path:
//
//	p, err := svc.Authorize(ctx, bearerToken, auth.PermDeploymentsCreate, "production", remoteIP)
//	// err: ErrThrottled / ErrUnauthenticated / ErrPermissionDenied / store failure
//
// # Policy
//
// Roles and permissions are documented on Role. A key may be limited to a set
// of environments (empty = all). Environment-scoped permissions (deployments.*,
// namespaces.manage) are checked against the requested environment; a
// restricted key gets ErrPermissionDenied for other environments and for ""
// (an all-environments request). keys.manage and audit.read are global and
// their checks pass environment "". Key management additionally requires the
// acting key to cover (Principal.Covers) the environments of the keys it
// creates or manages.
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
