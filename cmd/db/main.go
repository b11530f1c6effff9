// Command db serves DBService, the platform's one persistence layer
// (SQLite under .dotdo/, or PostgreSQL from DOTDO_DATABASE_URL), on
// 127.0.0.1:8082 by default. It is internal: callers need the internal
// service credential.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() { os.Exit(boot.Main("db", os.Args[1:], os.Stderr, &boot.DBConfig{})) }
