// Command pause is the sandbox ("pause") process of the node e2e test's
// pods: it holds the pod's namespaces, reaps the zombies it inherits as
// PID 1, and exits on SIGTERM or SIGINT. The test builds it statically
// (CGO_ENABLED=0) into its sandbox image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
