// Package credential carries the internal credentials: the secrets with
// which the platform's internal callers (deploy, auth, the dispatcher, the
// CLI's bootstrap) prove to the internal services (auth, db) who they are,
// as a service binding is unreachable from outside, and the table of what
// each caller may call (Policy, DefaultPolicy, enforced by a Verifier).
// The runtime's invocation endpoint has a credential of its own too.
package credential

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
)

// Header is the request header that carries the internal credential.
const Header = "Dotdo-Internal-Token"

// ErrRejected is the one error a caller without the credential sees; it
// says nothing about what was sent.
var ErrRejected = errors.New("missing or invalid internal service credential")

// Generate returns a new random credential: 32 bytes from crypto/rand,
// base64url encoded.
func Generate() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("credential: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Equal reports whether got matches want, in constant time. An empty want
// never matches.
func Equal(got, want string) bool {
	if want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Load reads the credential stored in path.
func Load(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("credential: %s is empty", path)
	}
	return tok, nil
}

// LoadOrCreate reads the credential stored in path, or generates one and
// writes it there with mode 0600 when the file does not exist. The file
// appears whole or not at all (written aside, then linked into place), so
// processes starting at once agree on one value and a crash leaves no empty
// file.
func LoadOrCreate(path string) (string, error) {
	tok, err := Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credential-*")
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	defer os.Remove(tmp.Name())
	tok = Generate()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("credential: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("credential: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("credential: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("credential: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Load(path) // another process won; use its credential
		}
		return "", fmt.Errorf("credential: %w", err)
	}
	return tok, nil
}

// Interceptor checks the credential on the server side and adds it on the
// client side.
type Interceptor struct {
	token string
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an interceptor for token. On a handler it rejects
// every call without the token with Unauthenticated; on a client it sends
// the token with every call.
func NewInterceptor(token string) *Interceptor { return &Interceptor{token: token} }

func (i *Interceptor) check(h interface{ Get(string) string }) error {
	if !Equal(h.Get(Header), i.token) {
		return connect.NewError(connect.CodeUnauthenticated, ErrRejected)
	}
	return nil
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			req.Header().Set(Header, i.token)
			return next(ctx, req)
		}
		if err := i.check(req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set(Header, i.token)
		return conn
	}
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := i.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
