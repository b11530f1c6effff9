package boot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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
// stops, gracefully, when the test ends.
func serve(t *testing.T, srv *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		// An HTTP/2 server waits up to a second for clients to close their
		// connections after GOAWAY; close the idle ones so tests stay fast.
		rpc.HTTPClient().CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

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
	checkHealth(t, url, deployv1connect.DeployServiceName, deployv1connect.RoutesServiceName, deployv1connect.AdminServiceName)

	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := deployv1connect.NewDeployServiceClient(rpc.HTTPClient(), url, p.opts...)
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
		})
	}

	t.Run("rest", func(t *testing.T) {
		// The original REST path, with curl's default form content type.
		body := `{"service":"BAD","environment":"production","script":"YQ=="}`
		res, err := http.Post(url+"/deploy", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "service") {
			t.Fatalf("POST /deploy = %d %s, want 400 naming service", res.StatusCode, b)
		}
	})
}

func TestServerShutsDownGracefully(t *testing.T) {
	srv := server.New("test", server.WithLogger(quietLogger()))
	slow := make(chan struct{})
	srv.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(slow)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
