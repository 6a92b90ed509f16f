// Command caveat is the caveat command line: offline tools for fm2
// macaroon tokens (caveat tokens …), the server (caveat server) and its
// clients (auth, orgs, apps, machines, tokens create|list|revoke). See
// internal/cli for its conventions.
package main

import (
	"os"

	"github.com/caveatdev/caveat/internal/cli"
)

func main() { os.Exit(run()) }

// run runs the command with the process's arguments, streams and
// environment, and returns the exit status.
func run() int {
	return cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}
