package source

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certops/fixtures"
)

// randomText returns n bytes of incompressible text, so that a pack
// holding it is about n bytes long.
func randomText(n int) string {
	b := make([]byte, n*3/4)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// stallProxy forwards TCP connections to upstream. In its stall-th
// connection (counting from 1; the ref listing of a fetch is the first,
// the fetch the second) it stops forwarding the server's bytes after
// after bytes, holding both connections open: a Git server that stalls
// mid-pack.
func stallProxy(tb testing.TB, upstream string, stall int, after int64) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	var n atomic.Int32
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			limit := int64(-1)
			if int(n.Add(1)) == stall {
				limit = after
			}
			wg.Go(func() { io.Copy(up, c) })
			wg.Go(func() {
				if limit < 0 {
					io.Copy(c, up)
					c.Close()
					return
				}
				io.CopyN(c, up, limit)
				// Stalled: read nothing more, close nothing.
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// fetchWithin runs Fetch and fails the test when it has not returned
// after limit (the bug this guards against is a fetch that never returns).
func fetchWithin(tb testing.TB, o Source, limit time.Duration) (time.Duration, error) {
	tb.Helper()
	type result struct {
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := o.Fetch(context.Background())
		done <- result{err}
	}()
	select {
	case r := <-done:
		return time.Since(start), r.err
	case <-time.After(limit):
		tb.Fatalf("Fetch still running after %v: wedged", limit)
		return 0, nil
	}
}

// uploadPackChildren lists this process's child processes running
// git-upload-pack (Linux /proc).
func uploadPackChildren(tb testing.TB) []string {
	tb.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	me := strconv.Itoa(os.Getpid())
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[1] == me && strings.Contains(s[:i], "upload-pack") {
			out = append(out, s[:i+1])
		}
	}
	return out
}

// TestFetchStallGitDaemon: a git:// server that stops sending in the
// middle of the pack is aborted after the stall timeout, with a
// *FetchStalledError, and the next fetch through a healthy server works.
func TestFetchStallGitDaemon(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "big", map[string]string{"blob.bin": randomText(1 << 20)})
	base := fixtures.ServeGitDaemon(t, repo.Root)
	upstream := strings.TrimSuffix(strings.TrimPrefix(base, "git://"), "/")
	proxy := stallProxy(t, upstream, 2, 20000)

	const stall = 500 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "clone")
	o, err := NewGit(GitOptions{URL: "git://" + proxy + "/" + repo.Name, Dir: dir, StallTimeout: stall})
	if err != nil {
		t.Fatal(err)
	}
	took, err := fetchWithin(t, o, 30*time.Second)
	var stalled *FetchStalledError
	if !errors.As(err, &stalled) {
		t.Fatalf("Fetch through a stalling server = %v, want a *FetchStalledError", err)
	}
	if !strings.Contains(err.Error(), "no progress for 500ms") {
		t.Errorf("Fetch error %q does not say why", err)
	}
	t.Logf("stalled fetch aborted after %v (stall timeout %v)", took.Round(time.Millisecond), stall)
	if took < stall {
		t.Errorf("Fetch aborted after %v, before the stall timeout %v", took, stall)
	}

	// The proxy forwards its third connection onwards in full. The same
	// clone, with a timeout no busy machine reaches.
	o, err = NewGit(GitOptions{URL: "git://" + proxy + "/" + repo.Name, Dir: dir, StallTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetchWithin(t, o, 60*time.Second); err != nil {
		t.Fatalf("Fetch after the stall: %v", err)
	}
}

// TestFetchStallFileTransport: a file:// fetch whose git-upload-pack
// stops writing in the middle of the pack (a wrapper script on PATH) is
// aborted after the stall timeout and its child process killed.
func TestFetchStallFileTransport(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "big", map[string]string{"blob.bin": randomText(1 << 20)})
	bin := t.TempDir()
	// The first 3000 bytes are forwarded; when more follow (a pack, not a
	// ref listing that ends there), the script stops reading and waits.
	script := `#!/bin/sh
exec 2>/dev/null
git upload-pack "$@" | {
	head -c 3000
	if [ "$(dd bs=1 count=1 2>/dev/null | wc -c)" -eq 1 ]; then exec sleep 30; fi
}
`
	if err := os.WriteFile(filepath.Join(bin, "git-upload-pack"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	const stall = 500 * time.Millisecond
	o, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(t.TempDir(), "clone"), StallTimeout: stall})
	if err != nil {
		t.Fatal(err)
	}
	took, err := fetchWithin(t, o, 30*time.Second)
	var stalled *FetchStalledError
	if !errors.As(err, &stalled) {
		t.Fatalf("Fetch through a stalling git-upload-pack = %v, want a *FetchStalledError", err)
	}
	t.Logf("stalled file:// fetch aborted after %v (stall timeout %v)", took.Round(time.Millisecond), stall)
	if kids := uploadPackChildren(t); len(kids) > 0 {
		t.Errorf("git-upload-pack children still running after the abort: %v", kids)
	}
}

// TestFetchFullDisk is the wedge of issue 16 item 2: a file:// fetch into
// a clone on a full file system fails to store the pack; go-git's deferred
// close then waited for ever for git-upload-pack, blocked writing the
// rest of the pack. The fetch must fail promptly, with the disk's error,
// and leave no child behind.
func TestFetchFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root; TestFetchStallFileTransport covers a stalling file:// fetch")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); TestFetchStallFileTransport covers a stalling file:// fetch", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "big", map[string]string{"blob.bin": randomText(4 << 20)})
	o, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(mnt, "clone")})
	if err != nil {
		t.Fatal(err)
	}
	took, err := fetchWithin(t, o, 60*time.Second)
	if err == nil {
		t.Fatal("Fetch of a 4 MB pack into a 1 MB file system succeeded")
	}
	if !strings.Contains(err.Error(), "no space left") {
		t.Errorf("Fetch error %q does not name the full disk", err)
	}
	t.Logf("fetch into a full disk failed after %v: %v", took.Round(time.Millisecond), err)
	if kids := uploadPackChildren(t); len(kids) > 0 {
		t.Errorf("git-upload-pack children still running: %v", kids)
	}
}
