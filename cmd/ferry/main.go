// Command ferry is the command-line interface of ferry: validate and format
// specs, build, push, sign and verify Wasm apps, and (later) plan, apply and
// run the GitOps agent. See `ferry --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
