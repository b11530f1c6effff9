// Package auth_test measures what authentication costs an RPC: Authorize
// over Connect on loopback (the auth service with its warm cache, the db
// service behind it) against a bare Connect unary RPC on the same server,
// in the same run.
//
//	go test ./bench/auth -run '^$' -bench . -benchtime 3s
package auth_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/internal/boot"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
)

// serve serves srv on loopback until b ends; the idle connections of the
// shared client close first, so that the h2c server stops at once.
func serve(b *testing.B, srv *server.Server) string {
	return testsupport.Serve(b, srv, testsupport.CloseIdle(rpc.HTTPClient()))
}

// stack starts db (SQLite) and auth, and returns the auth URL, the internal
// credential and an admin key.
func stack(b *testing.B) (string, string, string) {
	logger := testsupport.QuietLogger()
	dir := b.TempDir()
	// tok is deploy's credential: the benchmark calls auth as deploy does.
	tok, btok := credential.Generate(), credential.Generate()
	creds := map[credential.Caller]string{credential.Deploy: tok, credential.Bootstrap: btok}
	dbc := boot.DBConfig{Common: boot.Common{DataDir: dir, Credentials: creds}}
	st, err := dbc.OpenStore(context.Background(), logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	dbSrv, err := dbc.Server(logger, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ac := boot.AuthConfig{Common: boot.Common{DataDir: dir, Credentials: creds}, DBURL: serve(b, dbSrv)}
	authSrv, err := ac.Server(logger)
	if err != nil {
		b.Fatal(err)
	}
	authURL := serve(b, authSrv)
	key, err := boot.Bootstrap(context.Background(), authURL, btok, dir)
	if err != nil {
		b.Fatal(err)
	}
	return authURL, tok, key
}

func BenchmarkRPC(b *testing.B) {
	authURL, tok, key := stack(b)
	client, err := rpc.NewClient(authv1connect.NewAuthServiceClient, authURL, rpc.WithInternalToken(tok))
	if err != nil {
		b.Fatal(err)
	}
	copts, err := rpc.ClientOptions(rpc.WithInternalToken(tok))
	if err != nil {
		b.Fatal(err)
	}
	health := grpchealth.NewClient(rpc.HTTPClient(), authURL, copts...)
	ctx := context.Background()

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := health.Check(ctx, &grpchealth.CheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authorize-warm", func(b *testing.B) {
		req := &authv1.AuthorizeRequest{ApiKey: key, Permission: "deployments.create", Environment: "production", Client: "bench"}
		if _, err := client.Authorize(ctx, connect.NewRequest(req)); err != nil { // warm the cache
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Authorize(ctx, connect.NewRequest(req)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
