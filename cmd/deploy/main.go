// Command deploy serves the public Deploy API (DeployService, AdminService
// and the original REST paths) on 127.0.0.1:8080 by default.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() { os.Exit(boot.Main("deploy", os.Args[1:], os.Stderr, &boot.DeployConfig{})) }
