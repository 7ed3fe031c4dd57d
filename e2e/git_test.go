package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"certops/fixtures"
)

// gitRepo is a bare repository ("origin") and a work clone that commits
// and pushes to it over the file path, as a developer would.
type gitRepo struct {
	root string // folder holding the bare repositories: the servers' base path
	name string // "repo.git"
	bare string // root/name
	work string // the work clone
}

// git runs git in dir and returns its standard output; it fails the test on
// a non-zero exit.
func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := gitCmd(dir, args...)
	if err != nil {
		tb.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// newGitRepo creates an empty bare repository on branch main and a work
// clone of it.
func newGitRepo(tb testing.TB) *gitRepo {
	tb.Helper()
	requireTool(tb, "git")
	root := tb.TempDir()
	r := &gitRepo{root: root, name: "repo.git", bare: filepath.Join(root, "repo.git"), work: filepath.Join(tb.TempDir(), "work")}
	git(tb, root, "init", "-q", "--bare", "-b", "main", r.name)
	git(tb, root, "-C", r.bare, "config", "http.receivepack", "false")
	git(tb, filepath.Dir(r.work), "init", "-q", "-b", "main", r.work)
	git(tb, r.work, "remote", "add", "origin", r.bare)
	return r
}

// commit stages everything in the work clone, commits and pushes it to
// main, and returns the new commit id.
func (r *gitRepo) commit(tb testing.TB, msg string) string {
	tb.Helper()
	git(tb, r.work, "add", "-A")
	git(tb, r.work, "commit", "-q", "--allow-empty", "-m", msg)
	git(tb, r.work, "push", "-q", "origin", "HEAD:main")
	return r.head(tb)
}

// head returns the commit id at the work clone's HEAD.
func (r *gitRepo) head(tb testing.TB) string {
	tb.Helper()
	return strings.TrimSpace(git(tb, r.work, "rev-parse", "HEAD"))
}

// forcePush resets the work clone to rev and force-pushes it to main: a
// rollback that rewrites history.
func (r *gitRepo) forcePush(tb testing.TB, rev string) {
	tb.Helper()
	git(tb, r.work, "reset", "-q", "--hard", rev)
	git(tb, r.work, "push", "-q", "--force", "origin", "HEAD:main")
}

// gitDaemon serves the repositories below root with `git daemon` on a free
// loopback port and returns the URL of repo name. stop kills it (it is
// also killed at cleanup).
func gitDaemon(tb testing.TB, root, name string) (url string, stop func()) {
	tb.Helper()
	requireTool(tb, "git")
	for attempt := 0; ; attempt++ {
		port := freePort(tb)
		cmd := exec.Command("git", "daemon", "--reuseaddr", "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port),
			"--export-all", "--base-path="+root, "--informative-errors", root)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its forked children die with it
		var stderr fixtures.SyncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			tb.Fatalf("git daemon: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		tb.Cleanup(stop)
		url = fmt.Sprintf("git://127.0.0.1:%d/%s", port, name)
		if waitListening(tb, port, done) {
			return url, stop
		}
		if attempt >= 3 || !strings.Contains(stderr.String(), "in use") {
			tb.Fatalf("git daemon exited: %s", stderr.String())
		}
		// The port was taken between freePort and listen: try another.
	}
}

// waitListening polls 127.0.0.1:port until it accepts a connection (true)
// or done is closed (false); it fails the test after 30 s.
func waitListening(tb testing.TB, port int, done <-chan struct{}) bool {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("nothing listens on 127.0.0.1:%d after 30s", port)
	return false
}

// gitHTTP serves the repositories below root with `git http-backend`, the
// smart HTTP server of git, through net/http/cgi, and returns the URL of
// repo name and the server (Close it to take git down).
func gitHTTP(tb testing.TB, root, name string) (string, *httptest.Server) {
	tb.Helper()
	execPath := strings.TrimSpace(git(tb, root, "--exec-path"))
	h := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Dir:  root,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL + "/" + name, srv
}
