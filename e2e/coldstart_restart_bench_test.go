package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkColdStartRestart is BenchmarkColdStart for a restart, the usual
// cold start of a daemon: the data dir is the one a first start of the
// same 10,000-entity folder left, so zlint's results are read from it
// (certcheck.LintStore) instead of being made again. The first start that
// fills the data dir is not timed; each iteration restarts on it. The
// time to ready is the mean, as ns/op says; s-to-ready is the last, and
// cpu-s-to-ready the mean CPU the daemon spent until then.
func BenchmarkColdStartRestart(b *testing.B) {
	const n = 10_000
	b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) { benchRestart(b, n) })
}

func benchRestart(b *testing.B, n int) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	r := getBenchRepo(b, n)
	dataDir := b.TempDir()
	args := []string{"--source", r.dir, "--data-dir", dataDir}
	first := runDaemon(b, daemonConfig{args: args, readyTimeout: benchReadyTimeout})
	first.stop()
	if fi, err := os.Stat(filepath.Join(dataDir, "zlint-results")); err != nil || fi.Size() == 0 {
		b.Fatalf("the first start kept no zlint results: %v", err)
	}
	var cpu float64 // summed over the iterations
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		d := runDaemon(b, daemonConfig{args: args, readyTimeout: benchReadyTimeout})
		elapsed := time.Since(start)
		b.StopTimer()
		cpu += cpuSeconds(b, d.cmd.Process.Pid)
		if c, err := servedLeaf(d.listen, benchSNI(n-1), r.roots); err != nil || c.Subject.CommonName != benchSNI(n-1) {
			b.Fatalf("after a restart: %s served %v, err %v", benchSNI(n-1), c, err)
		}
		b.ReportMetric(float64(rssKiB(b, d.cmd.Process.Pid))/1024, "RSS-MiB")
		d.stop()
		b.ReportMetric(elapsed.Seconds(), "s-to-ready")
		b.StartTimer()
	}
	b.ReportMetric(cpu/float64(b.N), "cpu-s-to-ready")
}
