package dispatcher

import (
	"context"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	dispatcherv1 "github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/routing"
)

// handler serves DispatcherService from a Dispatcher. Requests are
// validated by the protovalidate interceptor before these methods run, and
// errors map to Connect codes in internal/rpcerr.
type handler struct {
	d *Dispatcher
}

var _ dispatcherv1connect.DispatcherServiceHandler = (*handler)(nil)

// NewHandler returns the DispatcherService handler backed by d.
func NewHandler(d *Dispatcher) dispatcherv1connect.DispatcherServiceHandler {
	return &handler{d: d}
}

// Resolve answers how the dispatcher would route a URL, through the same
// routing as the proxy (Dispatcher.Resolve). matched is true when a rule
// picked an allowed worker; reason is set whenever the request would not be
// forwarded, including a matched worker with nothing live (version 0).
func (h *handler) Resolve(_ context.Context, req *connect.Request[dispatcherv1.ResolveRequest]) (*connect.Response[dispatcherv1.ResolveResponse], error) {
	r, err := h.d.Resolve(req.Msg.GetUrl())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dispatcherv1.ResolveResponse{
		Matched:     r.Rule != routing.RuleNone,
		Rule:        ruleToProto(r.Rule),
		Worker:      r.Worker,
		Environment: r.Environment,
		Namespace:   r.Namespace,
		Version:     r.Version,
		Path:        r.Path,
		Reason:      r.Reason,
	}), nil
}

func ruleToProto(r routing.Rule) dispatcherv1.Rule {
	switch r {
	case routing.RuleSubdomain:
		return dispatcherv1.Rule_RULE_SUBDOMAIN
	case routing.RulePath:
		return dispatcherv1.Rule_RULE_PATH
	case routing.RuleDefault:
		return dispatcherv1.Rule_RULE_DEFAULT
	}
	return dispatcherv1.Rule_RULE_UNSPECIFIED
}

// ServicePrefixes are the path prefixes of the services the dispatcher's
// listener serves itself: DispatcherService, gRPC health and reflection.
var ServicePrefixes = []string{
	"/" + dispatcherv1connect.DispatcherServiceName + "/",
	"/" + grpchealth.HealthV1ServiceName + "/",
	"/" + grpcreflect.ReflectV1ServiceName + "/",
	"/" + grpcreflect.ReflectV1AlphaServiceName + "/",
}

// Middleware makes d the root of a listener that also serves the
// dispatcher's own services: a request whose Host is not routed to workers
// (an IP address, localhost, an internal name: see Dispatcher.RoutesHost)
// and whose path starts with one of ServicePrefixes or extraPrefixes (for
// example "/metrics") goes to next, the server's handler; every other
// request is proxied by d. So the workers' hosts reach workers on every
// path, and operators reach Resolve, health and reflection at the
// listener's address. Use it with internal/server.WithMiddleware.
func Middleware(d *Dispatcher, extraPrefixes ...string) func(next http.Handler) http.Handler {
	prefixes := append(append([]string(nil), ServicePrefixes...), extraPrefixes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hasAnyPrefix(r.URL.Path, prefixes) && !d.RoutesHost(r.Host) {
				next.ServeHTTP(w, r)
				return
			}
			d.ServeHTTP(w, r)
		})
	}
}

// PublicPrefixes are the paths of the dispatcher's own services that its
// public listener serves: the gRPC health check, for load balancers'
// probes. Resolve, reflection and /metrics are for operators and belong on
// the operator listener.
var PublicPrefixes = []string{"/" + grpchealth.HealthV1ServiceName + "/"}

// PublicMiddleware makes d the root of the public listener: a request for
// the gRPC health check at the listener's own address goes to next (the
// server's handler); everything else, whatever its path, is proxied by d.
// Use it with internal/server.WithMiddleware on a server that registers no
// service and mounts no reflection; serve Resolve on another (operator)
// server.
func PublicMiddleware(d *Dispatcher) func(next http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hasAnyPrefix(r.URL.Path, PublicPrefixes) && !d.RoutesHost(r.Host) {
				next.ServeHTTP(w, r)
				return
			}
			d.ServeHTTP(w, r)
		})
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
