package boot

import (
	"context"
	"flag"
	"log/slog"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/deploy"
)

// DeployConfig configures the deploy service.
type DeployConfig struct {
	Common
	// Addr is the public address of the Deploy API.
	Addr string
	// AuthURL and DBURL are the internal services deploy calls.
	AuthURL, DBURL string
}

// RegisterFlags registers the deploy service's flags on fs.
func (c *DeployConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_DEPLOY_ADDR", config.DefaultDeployAddr, "address to serve the Deploy API on")
	config.String(fs, &c.AuthURL, "auth-url", "DOTDO_AUTH_URL", "http://"+config.DefaultAuthAddr, "base URL of the auth service")
	config.String(fs, &c.DBURL, "db-url", "DOTDO_DB_URL", "http://"+config.DefaultDBAddr, "base URL of the db service")
}

// DeployFlags registers the deploy flags and returns its runner, for Main.
func DeployFlags(fs *flag.FlagSet) Runner {
	var c DeployConfig
	c.RegisterFlags(fs)
	return c.Run
}

// Server builds the deploy server: DeployService and AdminService with REST
// transcoding.
func (c *DeployConfig) Server(logger *slog.Logger) (*server.Server, error) {
	opts, err := rpc.HandlerOptions()
	if err != nil {
		return nil, err
	}
	srv := server.New("deploy", server.WithLogger(logger), server.WithREST(), server.WithMiddleware(deploy.RESTCompat))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(), opts...))
	srv.Register(deployv1connect.NewAdminServiceHandler(deploy.NewAdminHandler(), opts...))
	return srv, nil
}

// Run serves the deploy service until ctx is done.
func (c *DeployConfig) Run(ctx context.Context, logger *slog.Logger) error {
	srv, err := c.Server(logger)
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, c.Addr)
}
