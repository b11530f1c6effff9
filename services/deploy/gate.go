package deploy

import (
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/auth/apikey"
)

// ErrNoKey is the answer to a request to the Deploy API without a
// well-formed API key. Like the auth service's answer to a wrong key, it
// does not say which of the two it was.
var ErrNoKey = errors.New("invalid or missing API key")

// openPrefixes are the paths the gate lets through without a key: the
// standard health and reflection services, and /metrics when it is served
// beside the API (`dotdo dev`).
var openPrefixes = []string{
	"/" + grpchealth.HealthV1ServiceName + "/",
	"/" + grpcreflect.ReflectV1ServiceName + "/",
	"/" + grpcreflect.ReflectV1AlphaServiceName + "/",
	"/metrics",
}

// Gate refuses every request to the Deploy API that does not carry a
// well-formed API key (`Authorization: Bearer <key>` whose key passes
// apikey.Parse: format and checksum) before anything reads its body, so an
// anonymous request costs the server no memory and reaches neither the
// auth service nor its failed-attempt throttle. It answers in the
// request's protocol: Connect, gRPC and gRPC-Web get Unauthenticated, REST
// gets 401 with a google.rpc.Status body.
//
// Let through without a key: gRPC health and reflection, /metrics, and
// Health (`GET /health`, DeployService/Health) when the request carries no
// Authorization header at all, which Health answers with the overall
// status only. Wrap it around everything else (the outermost middleware of
// the deploy server).
func Gate(next http.Handler) http.Handler {
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gateOpen(r) {
			next.ServeHTTP(w, r)
			return
		}
		if _, err := apikey.Parse(bearerToken(r.Header.Get("Authorization"))); err == nil {
			next.ServeHTTP(w, r)
			return
		}
		// The body is never read: net/http closes the connection of an
		// HTTP/1.1 request whose large body is left unread, and resets
		// the stream of an HTTP/2 one.
		w.Header().Set("WWW-Authenticate", `Bearer realm="dotdo"`)
		if !isREST(r) {
			_ = errs.Write(w, r, connect.NewError(connect.CodeUnauthenticated, ErrNoKey))
			return
		}
		server.WriteRESTError(w, http.StatusUnauthorized, connect.CodeUnauthenticated, ErrNoKey.Error())
	})
}

// gateOpen reports whether r may pass without a key.
func gateOpen(r *http.Request) bool {
	for _, p := range openPrefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	if r.Header.Get("Authorization") != "" {
		return false
	}
	switch r.URL.Path {
	case deployv1connect.DeployServiceHealthProcedure:
		return true
	case "/health":
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return false
}

// isREST reports whether r is on one of the REST paths (everything but the
// RPC paths, which start with the package name).
func isREST(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/dotdo.") }
