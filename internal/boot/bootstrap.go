package boot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/internal/rpc"
)

// AdminKeyFile is where the bootstrap admin key is written, under the data
// directory.
const AdminKeyFile = "admin.key"

// ErrAdminExists is returned by Bootstrap when an active admin key exists.
var ErrAdminExists = errors.New("an active admin key already exists; bootstrap refused")

// Bootstrap creates the first admin key through the auth service at authURL
// with the bootstrap credential (credential.Bootstrap), which grants
// nothing else, writes it to dataDir/admin.key with mode
// 0600 (refusing to overwrite an existing file), and returns it. It returns
// ErrAdminExists when the auth service refuses because an admin key exists.
func Bootstrap(ctx context.Context, authURL, bootstrapToken, dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminKeyFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	// Reserve the file before the key exists, so that a key is never made
	// that cannot be written down.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s exists: %w", path, ErrAdminExists)
	}
	if err != nil {
		return "", err
	}
	written := false
	defer func() {
		f.Close()
		if !written {
			os.Remove(path)
		}
	}()
	client, err := rpc.NewClient(authv1connect.NewAuthServiceClient, authURL, rpc.WithInternalToken(bootstrapToken))
	if err != nil {
		return "", err
	}
	res, err := client.BootstrapAdminKey(ctx, connect.NewRequest(&authv1.BootstrapAdminKeyRequest{Name: "bootstrap admin"}))
	if connect.CodeOf(err) == connect.CodeAlreadyExists {
		return "", ErrAdminExists
	}
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	secret := res.Msg.GetSecret()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return "", fmt.Errorf("write %s: %w (the new admin key is %s; store it now)", path, err, secret)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w (the new admin key is %s; store it now)", path, err, secret)
	}
	written = true
	return secret, nil
}

// WaitHealthy polls the gRPC health check of baseURL until it reports
// SERVING or ctx is done.
func WaitHealthy(ctx context.Context, baseURL string) error {
	client := grpchealth.NewClient(rpc.HTTPClient(), baseURL)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := client.Check(ctx, &grpchealth.CheckRequest{})
		if err == nil && res.Status == grpchealth.StatusServing {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w (last error: %v)", baseURL, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
