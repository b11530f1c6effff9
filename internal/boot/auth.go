package boot

import (
	"context"
	"flag"
	"log/slog"

	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/remote"
)

// AuthConfig configures the auth service.
type AuthConfig struct {
	Common
	// Addr is the address to serve AuthService on.
	Addr string
	// DBURL is the db service the keys and audit events live in.
	DBURL string
}

// RegisterFlags registers the auth service's flags on fs.
func (c *AuthConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_AUTH_ADDR", config.DefaultAuthAddr, "address to serve AuthService on")
	config.String(fs, &c.DBURL, "db-url", "DOTDO_DB_URL", "http://"+config.DefaultDBAddr, "base URL of the db service")
}

// Server builds the auth server: an auth.Service whose keys and audit
// events live in the db service.
func (c *AuthConfig) Server(logger *slog.Logger, opts ...auth.Option) (*server.Server, error) {
	tok, err := c.Credential(credential.Auth)
	if err != nil {
		return nil, err
	}
	dbClient, err := rpc.NewClient(dbv1connect.NewDBServiceClient, c.DBURL, c.rpcOptions(logger, rpc.WithInternalToken(tok))...)
	if err != nil {
		return nil, err
	}
	st := remote.New(dbClient)
	svc := auth.New(st, append([]auth.Option{auth.WithLogger(logger), auth.WithMeterProvider(c.meterProvider())}, opts...)...)
	v, err := c.verifier(logger, authv1connect.AuthServiceName)
	if err != nil {
		return nil, err
	}
	hopts, err := rpc.HandlerOptions(c.rpcOptions(logger, rpc.WithVerifier(v))...)
	if err != nil {
		return nil, err
	}
	srv := server.New("auth", server.WithLogger(logger))
	srv.Register(authv1connect.NewAuthServiceHandler(auth.NewHandler(svc), hopts...))
	c.mountMetrics(srv, false)
	return srv, nil
}

// Run serves the auth service until ctx is done.
func (c *AuthConfig) Run(ctx context.Context, logger *slog.Logger) error {
	srv, err := c.Server(logger)
	if err != nil {
		return err
	}
	c.listenMetrics(ctx, logger)
	return srv.ListenAndServe(ctx, c.Addr)
}
