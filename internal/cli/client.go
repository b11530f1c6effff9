package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/config"
)

// progressThreshold is the request size above which uploads print a
// progress line.
const progressThreshold = 1 << 20

// clients are the typed clients of the public endpoints.
type clients struct {
	deploy     deployv1connect.DeployServiceClient
	routes     deployv1connect.RoutesServiceClient
	admin      deployv1connect.AdminServiceClient
	secrets    deployv1connect.SecretServiceClient
	dispatcher dispatcherv1connect.DispatcherServiceClient
}

// newClients builds clients that send the caller's key as a Bearer token
// and report upload progress on stderr.
func (e *Env) newClients() clients {
	httpClient := &http.Client{Transport: &progressTransport{base: http.DefaultTransport, w: e.Stderr}}
	opts := []connect.ClientOption{connect.WithInterceptors(bearer(e.apiKey()))}
	// The dispatcher's operator listener, where Resolve is served.
	dispatcherURL := config.EnvOr(e.Getenv, "http://"+config.DefaultDispatcherOperatorAddr, "DOTDO_DISPATCHER_URL")
	return clients{
		deploy:  deployv1connect.NewDeployServiceClient(httpClient, e.apiURL(), opts...),
		routes:  deployv1connect.NewRoutesServiceClient(httpClient, e.apiURL(), opts...),
		admin:   deployv1connect.NewAdminServiceClient(httpClient, e.apiURL(), opts...),
		secrets: deployv1connect.NewSecretServiceClient(httpClient, e.apiURL(), opts...),
		// Resolve needs no key, and the dispatcher's address may be a
		// worker's host: never send it the API key.
		dispatcher: dispatcherv1connect.NewDispatcherServiceClient(httpClient, dispatcherURL),
	}
}

// bearer adds `Authorization: Bearer <key>` to every call when key is set.
func bearer(key string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if key != "" {
				req.Header().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, req)
		}
	}
}

// progressTransport prints a progress line for request bodies over
// progressThreshold.
type progressTransport struct {
	base http.RoundTripper
	w    io.Writer
}

func (t *progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	total := req.ContentLength
	if want, ok := req.Context().Value(uploadSizeKey{}).(int64); ok && total < 0 {
		total = want // Connect streams the body, so its length is unknown here
	}
	if req.Body != nil && total > progressThreshold {
		req = req.Clone(req.Context())
		req.Body = &progressReader{r: req.Body, total: total, w: t.w}
	}
	return t.base.RoundTrip(req)
}

// uploadSizeKey is the context key of the expected size of an upload.
type uploadSizeKey struct{}

// withUploadSize tells the transport how large the request body will be.
func withUploadSize(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, uploadSizeKey{}, n)
}

// progressReader counts what is read and prints at most every 200 ms, and
// once at the end.
type progressReader struct {
	r       io.ReadCloser
	total   int64
	read    int64
	w       io.Writer
	last    time.Time
	printed bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if now := time.Now(); now.Sub(p.last) > 200*time.Millisecond || (err == io.EOF && !p.printed) {
		p.last = now
		fmt.Fprintf(p.w, "\ruploading %s / %s (%d%%)", mib(p.read), mib(p.total), min(100, 100*p.read/max(p.total, 1)))
		if err == io.EOF {
			fmt.Fprintln(p.w)
			p.printed = true
		}
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
