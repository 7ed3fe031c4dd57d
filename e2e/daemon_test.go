package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"certops/fixtures"
)

// readyTimeout bounds how long a daemon may take to become ready. It is
// generous because the suite shares two cores with everything else; it is a
// limit, not a measurement.
const readyTimeout = 90 * time.Second

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon is a running `certops run` process.
type daemon struct {
	tb     testing.TB
	cmd    *exec.Cmd
	listen string // host:port of the TLS gateway
	admin  string // host:port of the admin API
	port   int    // port of the TLS gateway
	logs   *fixtures.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // the result of Wait, valid after done
}

// daemonConfig is how a test starts a daemon.
type daemonConfig struct {
	args []string // after `run` and the --listen/--admin/--log-format flags
	env  []string // added to a clean environment
	// noWait returns as soon as the process started, without waiting for
	// /readyz.
	noWait bool
	// readyTimeout replaces the default readyTimeout (benchmarks with
	// 100,000 entities on a busy machine need more).
	readyTimeout time.Duration
	// wrap, when set, is a command that execs the daemon (such as
	// prlimit --nofile=N:N --), so the process keeps its pid.
	wrap []string
}

// startDaemon runs `certops run args...` on free loopback ports with JSON
// logs and waits until /readyz answers 200. The daemon is stopped at
// cleanup, where its exit status must be 0.
func startDaemon(tb testing.TB, args ...string) *daemon {
	tb.Helper()
	return runDaemon(tb, daemonConfig{args: args})
}

// runDaemon starts a daemon as cfg says.
func runDaemon(tb testing.TB, cfg daemonConfig) *daemon {
	tb.Helper()
	bin := requireBinary(tb)
	for attempt := 0; ; attempt++ {
		d := &daemon{tb: tb, logs: new(fixtures.SyncBuffer), done: make(chan struct{})}
		d.port = freePort(tb)
		d.listen = fmt.Sprintf("127.0.0.1:%d", d.port)
		d.admin = fmt.Sprintf("127.0.0.1:%d", freePort(tb))
		args := append([]string{"run", "--listen", d.listen, "--admin", d.admin, "--log-format", "json"}, cfg.args...)
		if len(cfg.wrap) > 0 {
			d.cmd = exec.Command(cfg.wrap[0], append(append(cfg.wrap[1:len(cfg.wrap):len(cfg.wrap)], bin), args...)...)
		} else {
			d.cmd = exec.Command(bin, args...)
		}
		d.cmd.Env = daemonEnv(tb, cfg.env)
		d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
		if err := d.cmd.Start(); err != nil {
			tb.Fatalf("start certops: %v", err)
		}
		go func() { d.err = d.cmd.Wait(); close(d.done) }()
		tb.Cleanup(func() {
			d.kill()
			if tb.Failed() {
				tb.Logf("certops %s logs:\n%s", strings.Join(args, " "), tail(d.logs.String(), 60))
			}
		})
		if cfg.noWait {
			return d
		}
		timeout := readyTimeout
		if cfg.readyTimeout > 0 {
			timeout = cfg.readyTimeout
		}
		if d.waitReady(timeout) {
			tb.Cleanup(d.stop)
			return d
		}
		if attempt < 3 && strings.Contains(d.logs.String(), "address already in use") {
			continue // a port was taken between freePort and the daemon's listen
		}
		tb.Fatalf("certops exited before ready (%v):\n%s", d.err, tail(d.logs.String(), 60))
	}
}

// daemonEnv is a clean environment for the daemon: no CERTOPS_ variable
// from the caller, and state and home folders of its own.
func daemonEnv(tb testing.TB, extra []string) []string {
	tb.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CERTOPS_") || strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "XDG_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	home := tb.TempDir()
	env = append(env, "HOME="+home, "XDG_STATE_HOME="+home+"/state", "NO_COLOR=1")
	return append(env, extra...)
}

// waitReady polls /readyz until it answers 200 (true) or the process exits
// (false); it fails the test after timeout.
func (d *daemon) waitReady(timeout time.Duration) bool {
	d.tb.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return false
		default:
		}
		resp, err := client.Get("http://" + d.admin + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	d.tb.Fatalf("certops not ready after %v:\n%s", timeout, tail(d.logs.String(), 60))
	return false
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30 s. It
// is idempotent.
func (d *daemon) stop() {
	d.tb.Helper()
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			d.tb.Errorf("certops did not stop within 30s of SIGTERM")
			return
		}
	}
	if d.err != nil {
		d.tb.Errorf("certops exited with %v after SIGTERM, want status 0:\n%s", d.err, tail(d.logs.String(), 40))
	}
}

// kill ends the process if it still runs, without judging its exit.
func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Kill()
		<-d.done
	}
}

// exited reports whether the process has ended and its exit code.
func (d *daemon) exited() (bool, int) {
	select {
	case <-d.done:
		var exit *exec.ExitError
		if errors.As(d.err, &exit) {
			return true, exit.ExitCode()
		}
		return true, 0
	default:
		return false, 0
	}
}

// get requests path from the admin API and returns the status and body.
func (d *daemon) get(path string) (int, []byte) {
	d.tb.Helper()
	return httpDo(d.tb, http.MethodGet, "http://"+d.admin+path, nil, nil)
}

// httpDo performs one HTTP request and returns the status and body.
func httpDo(tb testing.TB, method, url string, header http.Header, body []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// eventually polls cond every 25 ms until it reports done, and fails the
// test with what and the last state cond described after timeout. The
// timeout is a generous limit for a busy machine, never a measurement.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() (done bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s (last: %s)", timeout, what, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// waitRevisionLogged polls the daemon's JSON log until a line above DEBUG
// carries "revision": rev (STYLE.md's stable key), that is until the daemon
// has decided on rev (applied, refused, restored), and returns that line's
// fields.
func (d *daemon) waitRevisionLogged(rev string) map[string]any {
	d.tb.Helper()
	var found map[string]any
	eventually(d.tb, 60*time.Second, "a log line for revision "+rev, func() (bool, string) {
		for _, line := range strings.Split(d.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["revision"] == rev && m["level"] != "DEBUG" {
				found = m
				return true, ""
			}
		}
		return false, tail(d.logs.String(), 5)
	})
	return found
}
