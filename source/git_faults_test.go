package source

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"certops/fixtures"
)

// mountTmpfs mounts a tmpfs of size at a temporary folder, or skips the
// test with the reason.
func mountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("mounting a tmpfs needs root")
	}
	mnt := tb.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		tb.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	tb.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// TestReadOnlyDataDirKeepsClone is issue 16 item 8: when the data dir
// turns read-only, the failed incremental fetch must not fall back to
// deleting the clone (which cannot help, and loses the revision restored
// at start).
func TestReadOnlyDataDirKeepsClone(t *testing.T) {
	mnt := mountTmpfs(t, "16m")
	repo := fixtures.NewGitRepo(t)
	first := repo.Commit(t, "first", map[string]string{"a.yaml": "name: a\n"})
	o, err := NewGit(GitOptions{URL: repo.FileURL(), Dir: filepath.Join(mnt, "clone")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, "second", map[string]string{"b.yaml": "name: b\n" + randomText(64<<10)})
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	defer exec.Command("mount", "-o", "remount,rw", mnt).Run()

	_, err = o.Fetch(context.Background())
	if err == nil {
		t.Fatal("Fetch into a read-only clone succeeded")
	}
	if !strings.Contains(err.Error(), "read-only file system") || !strings.Contains(err.Error(), "kept") {
		t.Errorf("Fetch error %q, want the read-only file system named and the clone kept", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "clone", "objects")); err != nil {
		t.Fatalf("the clone is gone after a fetch into a read-only data dir: %v", err)
	}
	tree, err := o.Open(context.Background(), first)
	if err != nil || tree.Revision != first {
		t.Errorf("Open(%s) from the kept clone = %v, %v; want the first revision", first, tree, err)
	}
}
