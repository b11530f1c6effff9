package credential

import (
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
)

// DefaultPolicy is what each internal caller of the platform may call: a
// table by procedure name. To let a caller call a new RPC, add a line to
// its list (with Allow to constrain its requests).
func DefaultPolicy() Policy {
	return Policy{
		Deploy: grants(
			// db: deployments, script blobs, the audit trail, leases.
			dbv1connect.DBServiceBeginDeploymentProcedure,
			dbv1connect.DBServiceCompleteDeploymentProcedure,
			dbv1connect.DBServiceGetDeploymentProcedure,
			dbv1connect.DBServiceGetLiveDeploymentProcedure,
			dbv1connect.DBServiceListDeploymentsProcedure,
			dbv1connect.DBServiceListPendingDeploymentsProcedure,
			dbv1connect.DBServicePutScriptBlobProcedure,
			dbv1connect.DBServiceGetScriptBlobProcedure,
			dbv1connect.DBServiceAppendAuditEventProcedure,
			dbv1connect.DBServiceListAuditEventsProcedure,
			dbv1connect.DBServiceVerifyAuditLogProcedure,
			dbv1connect.DBServiceGetAuditHeadProcedure,
			dbv1connect.DBServiceAcquireLeaseProcedure,
			dbv1connect.DBServiceRenewLeaseProcedure,
			dbv1connect.DBServiceReleaseLeaseProcedure,
			dbv1connect.DBServiceGetLeaseProcedure,
			// db: routing tables and the dispatch Worker's deployments.
			dbv1connect.DBServicePutRouteTableProcedure,
			dbv1connect.DBServiceGetRouteTableProcedure,
			dbv1connect.DBServiceListRouteTablesProcedure,
			dbv1connect.DBServiceBeginDispatchWorkerDeploymentProcedure,
			dbv1connect.DBServiceCompleteDispatchWorkerDeploymentProcedure,
			dbv1connect.DBServiceGetDispatchWorkerDeploymentProcedure,
			dbv1connect.DBServiceListDispatchWorkerDeploymentsProcedure,
			// auth: every key operation on behalf of an operator's key;
			// not BootstrapAdminKey.
			authv1connect.AuthServiceAuthenticateProcedure,
			authv1connect.AuthServiceAuthorizeProcedure,
			authv1connect.AuthServiceCreateApiKeyProcedure,
			authv1connect.AuthServiceListApiKeysProcedure,
			authv1connect.AuthServiceRevokeApiKeyProcedure,
			authv1connect.AuthServiceRotateApiKeyProcedure,
		),
		Auth: grants(
			// db: API key records and audit appends.
			dbv1connect.DBServiceCreateApiKeyProcedure,
			dbv1connect.DBServiceCreateBootstrapApiKeyProcedure,
			dbv1connect.DBServiceGetApiKeyProcedure,
			dbv1connect.DBServiceListApiKeysProcedure,
			dbv1connect.DBServiceRevokeApiKeyProcedure,
			dbv1connect.DBServiceSetApiKeyExpiryProcedure,
			dbv1connect.DBServiceTouchApiKeyProcedure,
			dbv1connect.DBServiceRotateApiKeyProcedure,
			dbv1connect.DBServiceAppendAuditEventProcedure,
		),
		Dispatcher: grants(
			// db: the stream of an environment's live versions and routing
			// table, read only.
			dbv1connect.DBServiceWatchEnvironmentProcedure,
		),
		Bootstrap: grants(
			// auth: the first admin key, nothing else.
			authv1connect.AuthServiceBootstrapAdminKeyProcedure,
		),
	}
}

// Grants grants each procedure with any request.
func Grants(procedures ...string) []Grant { return grants(procedures...) }

// grants grants each procedure with any request.
func grants(procedures ...string) []Grant {
	out := make([]Grant, len(procedures))
	for i, p := range procedures {
		out[i] = Grant{Procedure: p}
	}
	return out
}
