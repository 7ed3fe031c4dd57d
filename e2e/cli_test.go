package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// cliKill is how long certops lets a command run before it kills it.
const cliKill = 4 * time.Minute

func certops(tb testing.TB, dir string, env []string, args ...string) cliResult {
	tb.Helper()
	bin := requireBinary(tb)
	// A bound for a hung command, longer than the longest --timeout the
	// tests give (fleet wait's 3 minutes after a NATS cluster restart).
	ctx, cancel := context.WithTimeout(context.Background(), cliKill)
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

// TestCommandLine checks the commands that need no daemon and the errors
// of bad input (DESIGN.md 4): exit 0 with the answer, or exit 1 with a
// message on standard error and no panic.
func TestCommandLine(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	deadAdmin := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{[]string{"version"}, 0, "certops", ""},
		{[]string{"schema"}, 0, "#SSL", ""},
		{[]string{"no-such-command"}, 1, "", "no-such-command"},
		{[]string{"status", "--admin", deadAdmin}, 1, "", "127.0.0.1"},
		{[]string{"run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--max-delete", "150%"}, 1, "", "--max-delete"},
		{[]string{"run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "xml"}, 1, "", "--log-format"},
		{[]string{"run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--interval", "soon"}, 1, "", "interval"},
		{[]string{"diff"}, 1, "", ""},
		{[]string{"validate", "--format", "yaml", "."}, 1, "", "format"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := certops(t, dir, nil, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("certops %s: exit %d, stdout %q, stderr %q; want exit %d, %q in stdout, %q in stderr",
					strings.Join(tt.args, " "), r.code, tail(r.stdout, 5), r.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if tt.wantCode != 0 && strings.TrimSpace(r.stderr) == "" {
				t.Errorf("certops %s failed without a message on standard error", strings.Join(tt.args, " "))
			}
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("certops %s panicked:\n%s", strings.Join(tt.args, " "), r.stderr)
			}
		})
	}
}
