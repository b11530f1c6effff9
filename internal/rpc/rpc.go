// Package rpc holds the Connect options that every handler and client of the
// platform shares: OpenTelemetry tracing and metrics, protovalidate request
// validation, the internal credentials, and an HTTP client that
// speaks HTTP/2 over plain TCP so that calls between services use one
// multiplexed connection.
package rpc

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpcerr"
)

// DefaultReadMaxBytes bounds a request message a handler reads. Deploy
// raises it to fit its configured script limit.
const DefaultReadMaxBytes = 4 << 20

type options struct {
	internalToken string
	verifier      *credential.Verifier
	readMaxBytes  int
	interceptors  []connect.Interceptor
	logger        *slog.Logger
	otel          []otelconnect.Option
}

// Option configures HandlerOptions and ClientOptions.
type Option func(*options)

// WithInternalToken makes clients send token, the caller's own internal
// credential. Handlers ignore it: they check credentials with
// WithVerifier.
func WithInternalToken(token string) Option {
	return func(o *options) { o.internalToken = token }
}

// WithVerifier makes handlers require an internal caller's credential and
// check that the caller's grants name the procedure (credential.Policy).
func WithVerifier(v *credential.Verifier) Option {
	return func(o *options) { o.verifier = v }
}

// WithReadMaxBytes bounds the size of a request message a handler reads.
func WithReadMaxBytes(n int) Option { return func(o *options) { o.readMaxBytes = n } }

// WithInterceptors adds interceptors after the shared ones (and so after
// validation, on a handler).
func WithInterceptors(i ...connect.Interceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, i...) }
}

// WithOtel passes options (such as the service's own tracer and meter
// providers) to the OpenTelemetry interceptor; the global providers
// otherwise.
func WithOtel(opts ...otelconnect.Option) Option {
	return func(o *options) { o.otel = append(o.otel, opts...) }
}

// WithLogger sets the logger on which handlers report internal faults;
// slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

func apply(opts []Option) options {
	o := options{readMaxBytes: DefaultReadMaxBytes, logger: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// HandlerOptions returns the options for a generated New...ServiceHandler.
// Interceptors run in this order: tracing and metrics, the mapping of
// domain errors to Connect codes (rpcerr), the internal caller's credential
// and grant (WithVerifier, when configured), validation of the request against its protovalidate rules
// (InvalidArgument naming the field, before the handler runs), then any
// extra interceptors.
func HandlerOptions(opts ...Option) ([]connect.HandlerOption, error) {
	o := apply(opts)
	otel, err := otelconnect.NewInterceptor(append([]otelconnect.Option{otelconnect.WithTrustRemote()}, o.otel...)...)
	if err != nil {
		return nil, fmt.Errorf("rpc: otel interceptor: %w", err)
	}
	chain := []connect.Interceptor{otel, rpcerr.NewInterceptor(o.logger)}
	if o.verifier != nil {
		chain = append(chain, o.verifier)
	}
	chain = append(chain, validate.NewInterceptor())
	chain = append(chain, o.interceptors...)
	return []connect.HandlerOption{
		connect.WithInterceptors(chain...),
		connect.WithReadMaxBytes(o.readMaxBytes),
		connect.WithCompressMinBytes(1024),
	}, nil
}

// ClientOptions returns the options for a generated New...ServiceClient:
// tracing and metrics, the caller's internal credential when configured,
// then any
// extra interceptors.
func ClientOptions(opts ...Option) ([]connect.ClientOption, error) {
	o := apply(opts)
	otel, err := otelconnect.NewInterceptor(o.otel...)
	if err != nil {
		return nil, fmt.Errorf("rpc: otel interceptor: %w", err)
	}
	chain := []connect.Interceptor{otel}
	if o.internalToken != "" {
		chain = append(chain, credential.NewInterceptor(o.internalToken))
	}
	chain = append(chain, o.interceptors...)
	return []connect.ClientOption{connect.WithInterceptors(chain...)}, nil
}

// NewClient builds a typed client with a generated constructor, the shared
// HTTP client and ClientOptions, for example
//
//	db, err := rpc.NewClient(dbv1connect.NewDBServiceClient, "http://127.0.0.1:8082", rpc.WithInternalToken(tok))
func NewClient[T any](ctor func(connect.HTTPClient, string, ...connect.ClientOption) T, baseURL string, opts ...Option) (T, error) {
	copts, err := ClientOptions(opts...)
	if err != nil {
		var zero T
		return zero, err
	}
	return ctor(HTTPClient(), baseURL, copts...), nil
}

var sharedClient = newHTTPClient()

// HTTPClient returns the process's shared HTTP client for calls between
// services. It speaks HTTP/2 without TLS (prior knowledge) to http:// URLs,
// as gRPC needs, and HTTP/2 over TLS to https:// URLs.
func HTTPClient() *http.Client { return sharedClient }

func newHTTPClient() *http.Client {
	var protocols http.Protocols
	// Without HTTP1 in the set, http:// URLs use HTTP/2 with prior knowledge.
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	t := &http.Transport{
		Proxy:                 nil, // calls between services never go through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		Protocols:             &protocols,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t}
}
