package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cliResult is the outcome of one certops command.
type cliResult struct {
	code           int
	stdout, stderr string
}

// certops runs the binary with args in dir and returns its outcome; env is
// added to a clean environment.
func certops(tb testing.TB, dir string, env []string, args ...string) cliResult {
	tb.Helper()
	bin := requireBinary(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = daemonEnv(tb, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	default:
		tb.Fatalf("certops %s: %v\n%s", strings.Join(args, " "), err, r.stderr)
	}
	return r
}
