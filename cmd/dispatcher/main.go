// Command dispatcher routes HTTP traffic to workers by subdomain, path or
// default, in the dispatch namespace of its environment, on 127.0.0.1:8787
// by default.
package main

import (
	"os"

	"github.com/dot-do/platform/internal/boot"
)

func main() {
	os.Exit(boot.Main("dispatcher", os.Args[1:], os.Stderr, &boot.DispatcherConfig{}))
}
