// Command stack starts and stops the local stack of real components (package test/stack):
//
//	go run ./test/stack/cmd up        start everything not running yet (idempotent), print timings
//	go run ./test/stack/cmd api       only etcd, the API server (on 127.0.0.1), the CRDs and config/
//	go run ./test/stack/cmd down      stop every process and remove the state directory
//	go run ./test/stack/cmd env       print the environment to talk to the stack (eval it)
//	go run ./test/stack/cmd leader    print the controller pod that leads
//
// OCL_STACK_DIR (default $TMPDIR/ocl-stack) holds all its state; OCL_CONTROLLER=process runs the
// controller as a host process. Addresses are fixed: one stack per machine at a time.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ocl-pipelines/ocl-pipelines/test/stack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: stack up|api|down|env|leader")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s, err := stack.New(stack.OptionsFromEnv())
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		return s.Up(ctx)
	case "api":
		return s.API(ctx)
	case "down":
		return s.Down()
	case "env":
		env, err := s.Env()
		if err != nil {
			return err
		}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Printf("export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
		}
		return nil
	case "leader":
		leader, err := s.Leader(ctx)
		if err != nil {
			return err
		}
		if leader == "" {
			return fmt.Errorf("no controller pod leads")
		}
		fmt.Println(leader)
		return nil
	}
	return fmt.Errorf("unknown command %q: use up, api, down, env or leader", args[0])
}
