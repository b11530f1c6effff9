// Command auth serves AuthService (API keys and RBAC) on 127.0.0.1:8081 by
// default. It is internal: only internal callers (deploy, the CLI's bootstrap)
// with their own credentials, each granted its RPCs, get answers.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() { os.Exit(boot.Main("auth", os.Args[1:], os.Stderr, &boot.AuthConfig{})) }
