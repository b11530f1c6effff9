package auth

import (
	"context"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

func benchService(b *testing.B, opts ...Option) (*Service, string) {
	b.Helper()
	ctx := context.Background()
	opts = append([]Option{WithLogger(testsupport.QuietLogger())}, opts...)
	svc := New(sqlitetest.Open(b), opts...)
	root, _, err := svc.Bootstrap(ctx, "root")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, root.Token, "bench")
	if err != nil {
		b.Fatal(err)
	}
	k, _, err := svc.CreateKey(ctx, admin, "ci", store.RoleDeployer, []string{"staging"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return svc, k.Token
}

func benchAuthorize(b *testing.B, svc *Service, token string) {
	ctx := context.Background()
	if _, err := svc.Authorize(ctx, token, authz.PermDeploymentsCreate, "staging", "bench"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authorize(ctx, token, authz.PermDeploymentsCreate, "staging", "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeWarmCache measures an authorized call whose key is
// cached: no store access.
func BenchmarkAuthorizeWarmCache(b *testing.B) {
	svc, tok := benchService(b)
	benchAuthorize(b, svc, tok)
}

// BenchmarkAuthorizeColdCache measures an authorized call with the cache
// disabled: a store lookup (in-memory here; add the DB round trip in
// production), hash and constant-time compare on every call.
func BenchmarkAuthorizeColdCache(b *testing.B) {
	svc, tok := benchService(b, WithCacheTTL(0))
	benchAuthorize(b, svc, tok)
}

// BenchmarkAuthenticateMalformed measures rejecting garbage (checksum only).
func BenchmarkAuthenticateMalformed(b *testing.B) {
	svc, tok := benchService(b, WithThrottle(ThrottleConfig{MaxFailures: 0}))
	bad := tok[:len(tok)-1] + "0"
	if bad == tok {
		bad = tok[:len(tok)-1] + "1"
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(ctx, bad, "bench"); err == nil {
			b.Fatal("accepted")
		}
	}
}
