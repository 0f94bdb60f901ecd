// Command pause is the sandbox ("pause") container of the local test stack's node: it does
// nothing until it is told to stop, and then stops at once.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
