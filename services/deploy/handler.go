// Package deploy is the public Deploy API: DeployService and the operators'
// AdminService, served on the one public endpoint of the platform.
package deploy

import (
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
)

// NewHandler returns the DeployService handler. Every RPC answers
// Unimplemented until the deploy path is built (issue 5); health,
// reflection and request validation around it are already real.
func NewHandler() deployv1connect.DeployServiceHandler {
	return unimplementedDeploy{}
}

type unimplementedDeploy struct {
	deployv1connect.UnimplementedDeployServiceHandler
}

// NewAdminHandler returns the AdminService handler; Unimplemented for now.
func NewAdminHandler() deployv1connect.AdminServiceHandler {
	return unimplementedAdmin{}
}

type unimplementedAdmin struct {
	deployv1connect.UnimplementedAdminServiceHandler
}
