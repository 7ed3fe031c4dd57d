package schema_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/schema"
)

// BenchmarkLoad10k validates a repository of 10,000 generated entities in
// 100 files (every entity has its own name and SNI, all share one wildcard
// certificate) and reports entities/s and the heap retained per entity.
func BenchmarkLoad10k(b *testing.B) {
	ca := fixtures.NewRootCA(b, "bench CA")
	leaf := ca.Leaf(b, fixtures.LeafOptions{DNSNames: []string{"*.bench.example"}, NotAfter: time.Now().AddDate(1, 0, 0)})
	fsys := fstest.MapFS{}
	const files, perFile = 100, 100
	for f := range files {
		var sb strings.Builder
		for i := range perFile {
			n := f*perFile + i
			sb.WriteString("---\n")
			sb.WriteString(fixtures.EntityYAML(fixtures.Entity{
				Name:   fmt.Sprintf("e%05d", n),
				SNIs:   []string{fmt.Sprintf("e%05d.bench.example", n)},
				Chains: []*fixtures.Leaf{leaf},
				Labels: map[string]string{"team": "bench"},
			}))
		}
		fsys[fmt.Sprintf("d%02d/f%03d.yaml", f%10, f)] = &fstest.MapFile{Data: []byte(sb.String())}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := fixtures.ProcessCPU()
	var res *schema.Result
	for b.Loop() {
		var err error
		res, err = schema.Load(fsys, schema.Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := fixtures.ProcessCPU() - cpu0
	if err := res.Problems.Err(); err != nil || len(res.Entities) != files*perFile {
		b.Fatalf("Load: %d entities, %v", len(res.Entities), err)
	}
	b.ReportMetric(float64(b.N*files*perFile)/b.Elapsed().Seconds(), "entities/s")
	if cpu > 0 {
		// CPU time includes the garbage collector's; on a shared machine
		// this is the stable figure.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*files*perFile), "cpu-µs/entity")
	}
	var before, after runtime.MemStats
	res = nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, _ = schema.Load(fsys, schema.Options{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(res.Entities)), "retained-B/entity")
	runtime.KeepAlive(res)
}
