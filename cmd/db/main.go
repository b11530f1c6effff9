// Command db serves DBService, the platform's one persistence layer
// (SQLite under .dotdo/, or PostgreSQL from DOTDO_DATABASE_URL), on
// 127.0.0.1:8082 by default. It is internal: only internal callers (deploy,
// auth, the dispatcher) with their own credentials, each granted its RPCs,
// get answers.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() { os.Exit(boot.Main("db", os.Args[1:], os.Stderr, &boot.DBConfig{})) }
