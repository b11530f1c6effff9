package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/internal/boot"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
)

func runKeys(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "keys", args, map[string]func(context.Context, *Env, []string) error{
		"create":    keysCreate,
		"list":      keysList,
		"revoke":    keysRevoke,
		"rotate":    keysRotate,
		"bootstrap": keysBootstrap,
	})
}

func parseRole(s string) (authv1.Role, error) {
	v, ok := authv1.Role_value["ROLE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usagef("--role %q: want admin, deployer or viewer", s)
	}
	return authv1.Role(v), nil
}

func roleName(r authv1.Role) string { return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_")) }

// printSecret shows a new key once, with its id.
func printSecret(w io.Writer, k *authv1.ApiKey, secret string) {
	fmt.Fprintf(w, "key %s (%s, %s) created. The key is shown once; store it now:\n\n    %s\n\n",
		k.GetKeyId(), k.GetName(), roleName(k.GetRole()), secret)
}

func keysCreate(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "keys create")
	name := fs.String("name", "", "what the key is for (required)")
	role := fs.String("role", "deployer", "admin, deployer or viewer")
	ttl := fs.Duration("ttl", 0, "lifetime, for example 720h (no expiry when 0)")
	var envs stringList
	fs.Var(&envs, "env", "limit the key to this environment (repeatable; all when none)")
	out := fs.String("output", "table", "table, or json (the response, secret included)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--name is required")
	}
	r, err := parseRole(*role)
	if err != nil {
		return err
	}
	req := &deployv1.CreateApiKeyRequest{Name: *name, Role: r, Environments: envs}
	if *ttl > 0 {
		req.Ttl = durationpb.New(*ttl)
	}
	res, err := e.newClients().admin.CreateApiKey(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) { printSecret(w, res.Msg.GetApiKey(), res.Msg.GetSecret()) })
}

func keysList(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "keys list")
	all := fs.Bool("all", false, "include revoked keys")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := e.newClients().admin.ListApiKeys(ctx, connect.NewRequest(&deployv1.ListApiKeysRequest{IncludeRevoked: *all}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintln(w, "KEY ID\tNAME\tROLE\tENVIRONMENTS\tCREATED\tEXPIRES\tREVOKED\tLAST USED")
		for _, k := range res.Msg.GetApiKeys() {
			envs := "all"
			if len(k.GetEnvironments()) > 0 {
				envs = strings.Join(k.GetEnvironments(), ",")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetKeyId(), k.GetName(), roleName(k.GetRole()), envs,
				when(k.GetCreatedAt()), when(k.GetExpiresAt()), when(k.GetRevokedAt()), when(k.GetLastUsedAt()))
		}
	})
}

func oneKeyID(fs interface {
	NArg() int
	Arg(int) string
}) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("want one key id")
	}
	return fs.Arg(0), nil
}

func keysRevoke(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "keys revoke")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneKeyID(fs)
	if err != nil {
		return err
	}
	res, err := e.newClients().admin.RevokeApiKey(ctx, connect.NewRequest(&deployv1.RevokeApiKeyRequest{KeyId: id}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintf(w, "key %s revoked at %s\n", res.Msg.GetApiKey().GetKeyId(), when(res.Msg.GetApiKey().GetRevokedAt()))
	})
}

func keysRotate(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "keys rotate")
	grace := fs.Duration("grace", 24*time.Hour, "how long the old key keeps working")
	out := fs.String("output", "table", "table, or json (the response, secret included)")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneKeyID(fs)
	if err != nil {
		return err
	}
	res, err := e.newClients().admin.RotateApiKey(ctx, connect.NewRequest(&deployv1.RotateApiKeyRequest{KeyId: id, GracePeriod: durationpb.New(*grace)}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		printSecret(w, res.Msg.GetApiKey(), res.Msg.GetSecret())
		fmt.Fprintf(w, "the old key %s works until %s\n", res.Msg.GetPrevious().GetKeyId(), when(res.Msg.GetPrevious().GetExpiresAt()))
	})
}

// keysBootstrap creates the first admin key. It talks to the internal auth
// service with the bootstrap credential (which grants BootstrapAdminKey and
// nothing else) of the data directory, so it runs on the machine that runs
// the platform.
func keysBootstrap(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "keys bootstrap")
	authURL := fs.String("auth-url", config.EnvOr(e.Getenv, "http://"+config.DefaultAuthAddr, "DOTDO_AUTH_URL"), "auth service URL")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := e.dataDir()
	tok := e.Getenv(credential.Bootstrap.EnvVar())
	if tok == "" {
		var err error
		if tok, err = credential.Load(filepath.Join(dir, boot.CredentialsDir, credential.Bootstrap.File())); err != nil {
			return fmt.Errorf("no bootstrap credential (run this where the platform runs, or set %s): %w", credential.Bootstrap.EnvVar(), err)
		}
	}
	secret, err := boot.Bootstrap(ctx, *authURL, tok, dir)
	if errors.Is(err, boot.ErrAdminExists) {
		return connect.NewError(connect.CodeAlreadyExists, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Created the bootstrap admin key (shown once; also in %s, mode 0600):\n\n    %s\n\n", filepath.Join(dir, boot.AdminKeyFile), secret)
	return nil
}
