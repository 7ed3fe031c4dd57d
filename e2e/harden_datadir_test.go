package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataDirLocked is issue 16 item 8: a second daemon on the data dir of
// a running one refuses to start, naming the data dir and the holder, and
// the first keeps serving. Once the first stops, the data dir is free.
func TestDataDirLocked(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 0)
	leaf := f.shop(t)
	rev := f.repo.commit(t, "shop")
	url, _ := gitDaemon(t, f.repo.root, f.repo.name)
	dataDir := t.TempDir()
	first := startDaemon(t, "--source", url, "--data-dir", dataDir, "--interval", "0")
	waitApplied(t, first, rev)

	second := certops(t, t.TempDir(), nil, "run", "--source", url, "--data-dir", dataDir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if second.code != 1 {
		t.Fatalf("second daemon on the same data dir: exit %d, want 1\n%s", second.code, second.stderr)
	}
	want := fmt.Sprintf("data dir %s is in use by another certops daemon (pid %d)", dataDir, first.cmd.Process.Pid)
	if !strings.Contains(second.stderr, want) {
		t.Errorf("second daemon's message:\n%s\nwant it to say %q", second.stderr, want)
	}
	waitServed(t, first.listen, "shop.test", pool(f.ca), leaf)

	first.stop()
	third := startDaemon(t, "--source", url, "--data-dir", dataDir, "--interval", "0")
	waitApplied(t, third, rev)
}

// TestCorruptStateNothingServed is issue 16 item 8: with a corrupt
// applied.json and the Git server down, nothing is served, and the log
// must say so rather than "the last applied state keeps serving".
func TestCorruptStateNothingServed(t *testing.T) {
	requireBinary(t)
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "applied.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("git://127.0.0.1:%d/repo.git", freePort(t)) // nothing listens
	d := runDaemon(t, daemonConfig{noWait: true, args: []string{"--source", down, "--data-dir", dataDir, "--interval", "0"}})
	eventually(t, 60*time.Second, "a failed reconcile logged", func() (bool, string) {
		return strings.Contains(d.logs.String(), "reconcile failed"), tail(d.logs.String(), 5)
	})
	logs := d.logs.String()
	if strings.Contains(logs, "keeps serving") {
		t.Errorf("the log claims something keeps serving while nothing is:\n%s", logs)
	}
	if !strings.Contains(logs, "nothing is served until a revision is applied") {
		t.Errorf("the log does not say that nothing is served:\n%s", logs)
	}
	if !strings.Contains(logs, "applied.json") {
		t.Errorf("the log does not name the corrupt applied.json:\n%s", logs)
	}
}
