package devtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envLeak makes TestLeaksAGoroutine leak, in the child process of
// TestMainFailsOnALeakedGoroutine only.
const envLeak = "DEVTEST_LEAK_A_GOROUTINE"

// TestMainFailsOnALeakedGoroutine runs this package's tests again in a child
// process where one test leaks a goroutine: the tests pass, Main must fail the
// run and name the goroutine.
func TestMainFailsOnALeakedGoroutine(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLeaksAGoroutine$", "-test.count=1")
	cmd.Env = append(os.Environ(), envLeak+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the run with a leaked goroutine passed:\n%s", out)
	}
	if !strings.Contains(string(out), "goroutines outlived the tests") || !strings.Contains(string(out), "leakForever") {
		t.Fatalf("the failed run does not name the leaked goroutine (%v):\n%s", err, out)
	}
}

func TestLeaksAGoroutine(t *testing.T) {
	if os.Getenv(envLeak) == "" {
		t.Skip("runs in TestMainFailsOnALeakedGoroutine's child process")
	}
	go leakForever(make(chan struct{}))
}

func leakForever(never chan struct{}) { <-never }
