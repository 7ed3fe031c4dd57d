package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStrayFileMemory is issue 16 item 5 through the binary: a plain
// folder source with a 1.5 GB stray file (sparse) beside the entities. The
// daemon must not read it, at start or when its modification time changes.
func TestStrayFileMemory(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "stray file CA")
	dir := t.TempDir() // a plain folder, not a Git working copy
	shop := func() *testLeaf {
		leaf := ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
		writeFile(t, dir, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{leaf}}.yaml())
		return leaf
	}
	leaf := shop()
	stray := filepath.Join(dir, "backup.img")
	fh, err := os.Create(stray)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(1536 << 20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	d := startDaemon(t, "--source", dir, "--interval", "0")
	waitServed(t, d.listen, "shop.test", pool(ca), leaf)
	start := rssKiB(t, d.cmd.Process.Pid)

	// A new modification time is a change the folder source notices.
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(stray, now, now); err != nil {
		t.Fatal(err)
	}
	leaf2 := shop() // and a real change, to know the reconcile ran
	waitServed(t, d.listen, "shop.test", pool(ca), leaf2)
	after := rssKiB(t, d.cmd.Process.Pid)
	t.Logf("RSS with a 1.5 GB stray file: %d MiB at start, %d MiB after it changed", start>>10, after>>10)
	for what, kib := range map[string]int{"at start": start, "after the change": after} {
		if kib > 256<<10 {
			t.Errorf("RSS %s = %d MiB with a 1.5 GB stray file, want it not read (< 256 MiB)", what, kib>>10)
		}
	}
}
