package boot

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/apikey"
)

// protocols are the client protocols every RPC test runs through.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// serve starts srv on a loopback port and returns its base URL. The server
// stops, gracefully, when the test ends; the shared client's idle
// connections close first, so that the HTTP/2 server stops at once.
func serve(t *testing.T, srv *server.Server) string {
	t.Helper()
	return testsupport.Serve(t, srv, testsupport.CloseIdle(rpc.HTTPClient()))
}

// checkHealth asks the standard health service about service over every
// protocol and expects SERVING.
func checkHealth(t *testing.T, baseURL string, services ...string) {
	t.Helper()
	for _, p := range protocols {
		client := grpchealth.NewClient(rpc.HTTPClient(), baseURL, p.opts...)
		for _, svc := range append(services, "") {
			res, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("%s: health %q: %v", p.name, svc, err)
			}
			if res.Status != grpchealth.StatusServing {
				t.Fatalf("%s: health %q = %v, want SERVING", p.name, svc, res.Status)
			}
		}
	}
}

// wantInvalidArgument expects err to be InvalidArgument naming field.
func wantInvalidArgument(t *testing.T, err error, field string) {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeInvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	if !strings.Contains(cerr.Message(), field) {
		t.Fatalf("message %q does not name field %q", cerr.Message(), field)
	}
}

func TestDeployPlumbing(t *testing.T) {
	url := newTestStack(t).apiURL
	checkHealth(t, url, deployv1connect.DeployServiceName, deployv1connect.RoutesServiceName, deployv1connect.AdminServiceName, deployv1connect.SecretServiceName)

	// A well-formed key (unknown to auth) passes the gate; validation
	// answers before the key is checked.
	key := apikey.Generate().Token
	withKey := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	}))
	big := &deployv1.DeployRequest{Service: "gateway", Environment: "production", Script: make([]byte, 8<<20)}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := deployv1connect.NewDeployServiceClient(rpc.HTTPClient(), url, append(p.opts, withKey)...)
			_, err := client.Deploy(context.Background(), connect.NewRequest(&deployv1.DeployRequest{
				Service:     "Not A Name",
				Environment: "production",
				Script:      []byte("export default {}"),
			}))
			wantInvalidArgument(t, err, "service")
			_, err = client.Deploy(context.Background(), connect.NewRequest(&deployv1.DeployRequest{
				Service:     "gateway",
				Environment: "production",
				Modules:     []*deployv1.Module{{Name: "../evil.js", Content: []byte("x")}},
			}))
			wantInvalidArgument(t, err, "modules[0].name")

			// Without a key, or with a malformed one: Unauthenticated, in
			// the client's protocol, even for a large body.
			anon := deployv1connect.NewDeployServiceClient(rpc.HTTPClient(), url, p.opts...)
			_, err = anon.Deploy(context.Background(), connect.NewRequest(big))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("anonymous Deploy = %v, want Unauthenticated", err)
			}
			req := connect.NewRequest(big)
			req.Header().Set("Authorization", "Bearer dotdo_"+strings.Repeat("x", 62))
			_, err = anon.Deploy(context.Background(), req)
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("Deploy with a malformed key = %v, want Unauthenticated", err)
			}
			// Health answers a probe without a key.
			h, err := anon.Health(context.Background(), connect.NewRequest(&deployv1.HealthRequest{}))
			if err != nil || h.Msg.GetStatus() == "" || len(h.Msg.GetDependencies()) != 0 {
				t.Fatalf("anonymous Health = %v, %v", h, err)
			}
		})
	}

	t.Run("rest", func(t *testing.T) {
		// The original REST path, with curl's default form content type.
		body := `{"service":"BAD","environment":"production","script":"YQ=="}`
		req, _ := http.NewRequest("POST", url+"/deploy", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "service") {
			t.Fatalf("POST /deploy = %d %s, want 400 naming service", res.StatusCode, b)
		}
		res, err = http.Post(url+"/deploy", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"code":16`) {
			t.Fatalf("anonymous POST /deploy = %d %s, want 401", res.StatusCode, b)
		}
		res, err = http.Get(url + "/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"status"`) {
			t.Fatalf("GET /health without a key = %d %s, want 200", res.StatusCode, b)
		}
	})
}

func TestServerShutsDownGracefully(t *testing.T) {
	srv := server.New("test", server.WithLogger(testsupport.QuietLogger()))
	slow := make(chan struct{})
	srv.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(slow)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done") // what arrives is checked below
	}))
	ln := testsupport.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	<-slow
	cancel() // shut down while the request is in flight
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if g := <-got; g != "done" {
		t.Fatalf("in-flight request got %q, want it to finish", g)
	}
}
