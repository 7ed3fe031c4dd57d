package source

import "testing"

// BenchmarkDirRescan10k times the every-dirRescan listing of a watched
// folder of 10,000 unchanged files (issue 13: 1.7% of a daemon's CPU under
// load, ~150 ms a rescan).
func BenchmarkDirRescan10k(b *testing.B) {
	dir := b.TempDir()
	writeFolder(b, dir, 10000)
	o := newDir(b, dir)
	if _, err := o.Fetch(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if o.rescan(b.Context()) {
			b.Fatal("rescan of an unchanged folder found a change")
		}
	}
}
