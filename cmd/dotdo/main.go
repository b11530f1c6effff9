// Command dotdo is the dotdo platform's CLI. `dotdo dev` runs the whole
// platform in one process; see README.md for every command.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}
