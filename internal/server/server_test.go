package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
)

// TestReflection: reflection lists our services with health and reflection,
// and describes ours with their doc comments (from the buf image).
func TestReflection(t *testing.T) {
	srv := server.New("test", server.WithLogger(testsupport.QuietLogger()))
	srv.Register(deployv1connect.NewDeployServiceHandler(deployv1connect.UnimplementedDeployServiceHandler{}))
	base := testsupport.Serve(t, srv, testsupport.CloseIdle(rpc.HTTPClient()))

	client := grpcreflect.NewClient(rpc.HTTPClient(), base, connect.WithGRPC())
	stream := client.NewStream(context.Background())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{deployv1connect.DeployServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		if !slices.ContainsFunc(names, func(n protoreflect.FullName) bool { return string(n) == want }) {
			t.Errorf("ListServices = %v, missing %s", names, want)
		}
	}
	files, err := stream.FileContainingSymbol(deployv1connect.DeployServiceName)
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, f := range files {
		for _, loc := range f.GetSourceCodeInfo().GetLocation() {
			comments = append(comments, loc.GetLeadingComments())
		}
	}
	if !strings.Contains(strings.Join(comments, "\n"), "Deploy uploads a new version of a worker") {
		t.Fatalf("reflection lost the doc comments (%d comments)", len(comments))
	}
}
