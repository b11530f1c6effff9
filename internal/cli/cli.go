// Package cli is the dotdo command: the operators' and CI's client of the
// Deploy API, and `dotdo dev`, which runs the whole platform in one process.
//
// Every command reads DOTDO_API_URL (default http://127.0.0.1:8080) and
// DOTDO_API_KEY; without DOTDO_API_KEY it uses the bootstrap admin key in
// .dotdo/admin.key when that file exists (the `make run` case). Errors are
// printed as one line, and the exit code says what kind of error it was (see
// the Exit constants), so that scripts can rely on it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/internal/boot"
	"github.com/dot-do/platform/internal/config"
)

// Exit codes that scripts can rely on.
const (
	ExitOK               = 0 // success
	ExitError            = 1 // any other failure
	ExitUsage            = 2 // bad command line
	ExitUnauthenticated  = 3 // missing, invalid, expired or revoked API key
	ExitPermissionDenied = 4 // the key lacks the permission
	ExitNotFound         = 5 // unknown service, version, key or deployment
	ExitInvalid          = 6 // the request was refused as invalid or in the wrong state
	ExitUnavailable      = 7 // the server could not be reached
	ExitDeployFailed     = 8 // the deploy was recorded but its upload failed
)

// Env is what a command reads and writes besides its arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
}

// command is one dotdo subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *Env, args []string) error
}

func commands() []command {
	return []command{
		{"deploy", "deploy a worker: --service NAME --env ENV (--file FILE | --dir DIR [--all]); DIR's wrangler config is read", runDeploy},
		{"rollback", "roll a worker back: --service NAME --env ENV [--version N]", runRollback},
		{"deployments", "list deployments [--service S] [--env E] [--status S] [--output table|json]", runDeployments},
		{"keys", "manage API keys: create | list | revoke | rotate | bootstrap", runKeys},
		{"namespaces", "dispatch namespaces: ensure | list", runNamespaces},
		{"routes", "routing tables: get | set | history | diff | rollback | resolve URL", runRoutes},
		{"dispatcher", "the dispatch Worker for Cloudflare: build | deploy | history | rollback", runDispatcher},
		{"secret", "a worker's secrets: put NAME (value on stdin) | list | delete NAME, each with --service S --env E", runSecret},
		{"audit", "the audit trail: list | verify [--head FILE] | head", runAudit},
		{"trigger", "run a worker's handler now: scheduled --service NAME [--env ENV] [--cron EXPR]", runTrigger},
		{"tail", "stream a worker's invocations: --service NAME [--env ENV] [--format pretty|json] [--status ok|error] [--method M] [--search TEXT] [--sampling-rate R]", runTail},
		{"dev", "run the whole platform in one process on the default ports", runDev},
	}
}

// Main runs the dotdo command with args (without the program name) and
// returns its exit code.
func Main(args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go func() { <-ctx.Done(); stop() }() // a second signal kills at once
		err := c.run(ctx, &env, args[1:])
		if err == nil {
			return ExitOK
		}
		code := exitCode(err)
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(env.Stderr, "dotdo %s: %s\n", c.name, oneLine(err))
		}
		return code
	}
	fmt.Fprintf(env.Stderr, "dotdo: unknown command %q (see dotdo help)\n", args[0])
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dotdo <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nenvironment: DOTDO_API_URL (default http://127.0.0.1:8080), DOTDO_API_KEY")
}

// usageError marks a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// deployFailed marks a deploy that was recorded as failed.
type deployFailed struct{ msg string }

func (e deployFailed) Error() string { return e.msg }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var df deployFailed
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &df):
		return ExitDeployFailed
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		return ExitUnauthenticated
	case connect.CodePermissionDenied:
		return ExitPermissionDenied
	case connect.CodeNotFound:
		return ExitNotFound
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeAlreadyExists,
		connect.CodeResourceExhausted, connect.CodeOutOfRange:
		return ExitInvalid
	case connect.CodeUnavailable:
		return ExitUnavailable
	}
	return ExitError
}

// oneLine renders err on one line: a Connect error as "code: message".
func oneLine(err error) string {
	var cerr *connect.Error
	msg := err.Error()
	if errors.As(err, &cerr) {
		msg = cerr.Code().String() + ": " + cerr.Message()
		if cerr.Code() == connect.CodeUnavailable && errors.As(err, new(*net.OpError)) {
			msg += " (is the server running? check DOTDO_API_URL)"
		}
	}
	return strings.Join(strings.Fields(msg), " ")
}

// flags returns a flag set that reports errors as usage errors, not on
// stderr twice.
func flags(e *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("dotdo "+name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	return fs
}

// parse parses args, flags before or after the positional arguments (as in
// `dotdo keys rotate ID --grace 1h`), and turns flag errors into usage
// errors. The positional arguments are left in fs.Args().
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// sub dispatches to a subcommand of a command group.
func sub(ctx context.Context, e *Env, group string, args []string, subs map[string]func(context.Context, *Env, []string) error) error {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 {
		return usagef("want a subcommand: %s", strings.Join(names, ", "))
	}
	if isHelp(args[0]) {
		fmt.Fprintf(e.Stdout, "usage: dotdo %s <subcommand> [flags]\n\nsubcommands: %s\n(dotdo %s <subcommand> --help shows its flags)\n",
			group, strings.Join(names, ", "), group)
		return flag.ErrHelp
	}
	f, ok := subs[args[0]]
	if !ok {
		return usagef("unknown %s subcommand %q: want %s", group, args[0], strings.Join(names, ", "))
	}
	return f(ctx, e, args[1:])
}

func runDev(ctx context.Context, e *Env, args []string) error {
	if slices.ContainsFunc(args, isHelp) {
		boot.DevUsage(e.Stdout)
		return flag.ErrHelp
	}
	return boot.Dev(ctx, e.Stdout, e.Stderr, args)
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// dataDir is where the local credentials live.
func (e *Env) dataDir() string {
	return config.EnvOr(e.Getenv, config.DefaultDataDir, "DOTDO_DATA_DIR")
}

// apiURL is the Deploy API's base URL.
func (e *Env) apiURL() string {
	return strings.TrimRight(config.EnvOr(e.Getenv, "http://"+config.DefaultDeployAddr, "DOTDO_API_URL"), "/")
}

// apiKey is the caller's API key: DOTDO_API_KEY, else the bootstrap admin
// key in the data directory, else "".
func (e *Env) apiKey() string {
	if k := strings.TrimSpace(e.Getenv("DOTDO_API_KEY")); k != "" {
		return k
	}
	b, err := os.ReadFile(filepath.Join(e.dataDir(), boot.AdminKeyFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
