package fleet

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPageSetIncremental: after any sequence of changes, adds and
// removals (crossing shard-count boundaries), the pages a pageSet keeps
// are byte for byte those built from scratch.
func TestPageSetIncremental(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	index := map[string]string{}
	var ps pageSet
	digest := func() string { return digestOf(fmt.Appendf(nil, "%d", r.Int64())) }
	steps := []struct {
		name                   string
		changes, adds, removes int
	}{
		{"empty", 0, 0, 0},
		{"first entities", 0, 5, 0},
		{"one change", 1, 0, 0},
		{"grow past 16 pages", 0, 300, 0},
		{"one change in 305", 1, 0, 0},
		{"mixed", 7, 3, 4},
		{"shrink below 16 pages", 0, 0, 200},
		{"remove all", 0, 0, 104},
	}
	for _, st := range steps {
		names := make([]string, 0, len(index))
		for n := range index {
			names = append(names, n)
		}
		next := make(map[string]string, len(index))
		for n, d := range index {
			next[n] = d
		}
		for i := 0; i < st.changes && i < len(names); i++ {
			next[names[i]] = digest()
		}
		for i := 0; i < st.removes && st.changes+i < len(names); i++ {
			delete(next, names[st.changes+i])
		}
		for range st.adds {
			next[fmt.Sprintf("entity-%d", r.Int64())] = digest()
		}
		index = next
		got := ps.pages(index)
		var fresh pageSet
		want := fresh.pages(index)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: incremental pages differ from a full build (-want +got):\n%s", st.name, diff)
		}
		for i, b := range got {
			entries, err := parsePage(b, i, len(got))
			if err != nil {
				t.Fatalf("%s: page %d: %v", st.name, i, err)
			}
			for _, e := range entries {
				if index[e.Name] != e.Blob {
					t.Fatalf("%s: page %d lists %s at %s, want %s", st.name, i, e.Name, e.Blob, index[e.Name])
				}
			}
		}
	}
}
