// Package cli is the dotdo command: the operator's and CI's client of the
// Deploy API, and `dotdo dev`, which runs the whole platform in one process.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dot-do/platform/internal/boot"
)

// Exit codes that scripts can rely on.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed
	ExitUsage = 2 // bad command line
)

// Env is what a command reads and writes besides its arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
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
	switch args[0] {
	case "dev":
		return dev(args[1:], env)
	case "help", "-h", "--help":
		usage(env.Stdout)
		return ExitOK
	default:
		fmt.Fprintf(env.Stderr, "dotdo: unknown command %q\n", args[0])
		usage(env.Stderr)
		return ExitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: dotdo <command> [flags]

commands:
  dev      run the whole platform in one process on the default ports
  help     show this help
`)
}

func dev(args []string, env Env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := boot.Dev(ctx, env.Stderr, args); err != nil {
		fmt.Fprintf(env.Stderr, "dotdo dev: %v\n", err)
		return ExitError
	}
	return ExitOK
}
