// Command runtime serves the local Workers for Platforms runtime on
// 127.0.0.1:8790 by default: Cloudflare's dispatch-namespace API under
// /client/v4 and the invocation endpoint the dispatcher calls, running the
// workers in workerd.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() { os.Exit(boot.Main("runtime", os.Args[1:], os.Stderr, &boot.RuntimeConfig{})) }
