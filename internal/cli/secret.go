package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"golang.org/x/term"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/internal/config"
)

// maxSecretInput bounds what `secret put` reads from stdin: far above the
// 5 KiB a secret may hold, so that the server's answer names the size.
const maxSecretInput = 64 << 10

// secretUsage is what `dotdo secret --help` prints.
const secretUsage = `usage: dotdo secret <subcommand> [flags]

  put NAME --service S [--env E] [--output table|json]
                                      set a secret; the value is read from stdin
                                      (typed without echo on a terminal)
  list --service S [--env E] [--output table|json]
                                      list a worker's secrets: names and update times
  delete NAME --service S [--env E]   remove a secret
`

func runSecret(ctx context.Context, e *Env, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(e.Stdout, secretUsage)
		return flag.ErrHelp
	}
	return sub(ctx, e, "secret", args, map[string]func(context.Context, *Env, []string) error{
		"put":    secretPut,
		"list":   secretList,
		"delete": secretDelete,
	})
}

// secretFlags returns the flag set of a secret subcommand with its
// --service and --env flags and a usage line.
func secretFlags(e *Env, name, synopsis string) (fs *flag.FlagSet, service, env *string) {
	fs = flags(e, "secret "+name)
	service = fs.String("service", "", "the worker (required)")
	env = fs.String("env", config.DefaultEnvironment, "environment")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dotdo secret %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, service, env
}

// secretArgs parses args and returns the secret's name (when want is set)
// after checking that --service was given.
func secretArgs(fs *flag.FlagSet, args []string, service *string, want bool) (string, error) {
	if err := parse(fs, args); err != nil {
		return "", err
	}
	if *service == "" {
		return "", usagef("--service is required")
	}
	switch {
	case want && fs.NArg() != 1:
		return "", usagef("want one secret NAME, have %d arguments", fs.NArg())
	case !want && fs.NArg() != 0:
		return "", usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case want:
		return fs.Arg(0), nil
	}
	return "", nil
}

// secretPut sets a secret to the value on stdin.
func secretPut(ctx context.Context, e *Env, args []string) error {
	fs, service, env := secretFlags(e, "put", "NAME --service S [--env E] [--output table|json] < value")
	out := fs.String("output", "table", "table or json (the secret's name and update time, never its value)")
	name, err := secretArgs(fs, args, service, true)
	if err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	value, err := readSecret(e, name)
	if err != nil {
		return err
	}
	res, err := e.newClients().secrets.PutSecret(ctx, connect.NewRequest(&deployv1.PutSecretRequest{
		Service: *service, Environment: *env, Name: name, Value: value,
	}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		verb := "updated"
		if res.Msg.GetCreated() {
			verb = "created"
		}
		fmt.Fprintf(w, "secret %s of %s in %s %s\n", name, *service, *env, verb)
	})
}

// readSecret reads a secret's value from stdin: without echo from a
// terminal, else all of it less one trailing newline.
func readSecret(e *Env, name string) (string, error) {
	if f, ok := e.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.Stderr, "value of %s: ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.Stderr)
		return string(b), err
	}
	if e.Stdin == nil {
		return "", nil
	}
	b, err := io.ReadAll(io.LimitReader(e.Stdin, maxSecretInput+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretInput {
		return "", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("value: more than %d bytes on stdin; a secret holds at most 5120", maxSecretInput))
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return string(b), nil
}

// secretList lists a worker's secrets.
func secretList(ctx context.Context, e *Env, args []string) error {
	fs, service, env := secretFlags(e, "list", "--service S [--env E] [--output table|json]")
	out := fs.String("output", "table", "table or json")
	if _, err := secretArgs(fs, args, service, false); err != nil {
		return err
	}
	res, err := e.newClients().secrets.ListSecrets(ctx, connect.NewRequest(&deployv1.ListSecretsRequest{Service: *service, Environment: *env}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tUPDATED")
		for _, s := range res.Msg.GetSecrets() {
			fmt.Fprintf(w, "%s\t%s\n", s.GetName(), when(s.GetUpdatedAt()))
		}
	})
}

// secretDelete removes a secret.
func secretDelete(ctx context.Context, e *Env, args []string) error {
	fs, service, env := secretFlags(e, "delete", "NAME --service S [--env E]")
	name, err := secretArgs(fs, args, service, true)
	if err != nil {
		return err
	}
	if _, err := e.newClients().secrets.DeleteSecret(ctx, connect.NewRequest(&deployv1.DeleteSecretRequest{Service: *service, Environment: *env, Name: name})); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "secret %s of %s in %s deleted\n", name, *service, *env)
	return nil
}
