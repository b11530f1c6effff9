package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"connectrpc.com/connect"
)

// Caller names an internal caller: a part of the platform that calls the
// internal services with a credential of its own.
type Caller string

// The platform's internal callers.
const (
	// Deploy is the deploy service: it calls db (deployments, blobs,
	// audit, leases) and auth (keys).
	Deploy Caller = "deploy"
	// Auth is the auth service: it calls db (API keys, audit appends).
	Auth Caller = "auth"
	// Dispatcher is the public dispatcher: it reads live deployments from
	// db, nothing else.
	Dispatcher Caller = "dispatcher"
	// Bootstrap is the CLI's `dotdo keys bootstrap` (and `dotdo dev`): it
	// may only create the first admin key.
	Bootstrap Caller = "bootstrap"
)

// Callers lists the internal callers.
func Callers() []Caller { return []Caller{Deploy, Auth, Dispatcher, Bootstrap} }

// EnvVar returns the environment variable that holds c's credential, for
// example DOTDO_CREDENTIAL_DEPLOY.
func (c Caller) EnvVar() string { return "DOTDO_CREDENTIAL_" + strings.ToUpper(string(c)) }

// File returns the name of c's credential file under the data directory's
// credentials directory, for example "deploy.token".
func (c Caller) File() string { return string(c) + ".token" }

// Grant lets a caller call one procedure ("/package.Service/Method"),
// with any request, or only with the requests Allow accepts (unary
// procedures only: Allow returns an error saying what is not allowed).
type Grant struct {
	Procedure string
	Allow     func(req any) error
}

// Policy is the table of what each internal caller may call. A procedure
// that no grant of a caller names is refused to that caller with
// PermissionDenied.
type Policy map[Caller][]Grant

// grant returns c's grant of procedure.
func (p Policy) grant(c Caller, procedure string) (Grant, bool) {
	for _, g := range p[c] {
		if g.Procedure == procedure {
			return g, true
		}
	}
	return Grant{}, false
}

// CallersOf returns the callers granted at least one procedure of the
// service named service ("package.Service"), sorted: the credentials that
// service's server must know.
func (p Policy) CallersOf(service string) []Caller {
	prefix := "/" + service + "/"
	var out []Caller
	for c, gs := range p {
		if slices.ContainsFunc(gs, func(g Grant) bool { return strings.HasPrefix(g.Procedure, prefix) }) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Procedures returns the procedures granted to c, sorted.
func (p Policy) Procedures(c Caller) []string {
	var out []string
	for _, g := range p[c] {
		out = append(out, g.Procedure)
	}
	sort.Strings(out)
	return out
}

// ErrNotGranted is the one error an internal caller gets for a procedure
// its credential does not grant; the server logs which caller and
// procedure. Like ErrRejected it signals the platform's misconfiguration,
// never a client's mistake.
var ErrNotGranted = errors.New("the internal credential does not grant this procedure")

// Verifier is the server side of the internal credentials: it tells which
// caller presents a request's credential and whether the policy grants it
// the procedure.
type Verifier struct {
	policy Policy
	tokens []callerToken
	log    *slog.Logger
}

type callerToken struct {
	caller Caller
	token  string
}

var _ connect.Interceptor = (*Verifier)(nil)

// NewVerifier returns a Verifier that knows the credentials of tokens
// (caller to credential) and grants what policy says. Empty credentials
// are ignored.
func NewVerifier(policy Policy, tokens map[Caller]string, logger *slog.Logger) *Verifier {
	if logger == nil {
		logger = slog.Default()
	}
	v := &Verifier{policy: policy, log: logger}
	for c, t := range tokens {
		if t != "" {
			v.tokens = append(v.tokens, callerToken{c, t})
		}
	}
	sort.Slice(v.tokens, func(i, j int) bool { return v.tokens[i].caller < v.tokens[j].caller })
	return v
}

// identify returns the caller whose credential tok is, comparing with
// every known credential in constant time.
func (v *Verifier) identify(tok string) (Caller, bool) {
	var found Caller
	ok := false
	for _, ct := range v.tokens {
		if Equal(tok, ct.token) && !ok {
			found, ok = ct.caller, true
		}
	}
	return found, ok
}

type callerKey struct{}

// CallerOf returns the internal caller a Verifier identified for the
// request of ctx.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// check identifies the caller of a request for procedure and checks its
// grant, with msg (nil for a stream) for the grant's Allow.
func (v *Verifier) check(ctx context.Context, h interface{ Get(string) string }, procedure string, msg any) (context.Context, error) {
	c, ok := v.identify(h.Get(Header))
	if !ok {
		return ctx, connect.NewError(connect.CodeUnauthenticated, ErrRejected)
	}
	g, ok := v.policy.grant(c, procedure)
	if ok && g.Allow != nil {
		if msg == nil {
			ok = false
		} else if err := g.Allow(msg); err != nil {
			v.log.WarnContext(ctx, "internal caller refused", "caller", string(c), "procedure", procedure, "why", err.Error())
			return ctx, connect.NewError(connect.CodePermissionDenied, ErrNotGranted)
		}
	}
	if !ok {
		v.log.WarnContext(ctx, "internal caller refused", "caller", string(c), "procedure", procedure, "why", "not granted")
		return ctx, connect.NewError(connect.CodePermissionDenied, ErrNotGranted)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// WrapUnary implements connect.Interceptor.
func (v *Verifier) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := v.check(ctx, req.Header(), req.Spec().Procedure, req.Any())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (v *Verifier) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (v *Verifier) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := v.check(ctx, conn.RequestHeader(), conn.Spec().Procedure, nil)
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// String describes the policy of c, for logs and errors.
func (p Policy) String() string {
	var b strings.Builder
	for _, c := range Callers() {
		fmt.Fprintf(&b, "%s: %s\n", c, strings.Join(p.Procedures(c), ", "))
	}
	return b.String()
}
