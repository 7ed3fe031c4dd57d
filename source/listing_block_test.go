package source

import (
	"fmt"
	"testing"
	"unsafe"
)

// span returns where the bytes of strs begin and end in memory, and how
// many there are: strings packed into one block, one after another, span
// exactly their total length.
func span(strs []string) (lo, hi uintptr, total int) {
	for i, s := range strs {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if i == 0 || p < lo {
			lo = p
		}
		hi = max(hi, p+uintptr(len(s)))
		total += len(s)
	}
	return lo, hi, total
}

// assertPacked fails tb unless strs (non-empty each) lie side by side in
// one block of exactly their total length.
func assertPacked(tb testing.TB, what string, strs []string) {
	tb.Helper()
	lo, hi, total := span(strs)
	if int(hi-lo) != total {
		tb.Errorf("%s: %d strings span %d bytes, want %d (one block)", what, len(strs), hi-lo, total)
	}
}

// TestPackListing checks that packListing gives back every pair unchanged,
// carved out of one allocation.
func TestPackListing(t *testing.T) {
	for _, n := range []int{0, 1, 3, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			paths := make([]string, n)
			for i := range paths {
				paths[i] = fmt.Sprintf("d%03d/e%05d.yaml", i/100, i)
			}
			id := func(i int, dst []byte) []byte { return fmt.Appendf(dst, "id-%d", i*7) }
			gotPaths, gotIDs := make([]string, n), make([]string, n)
			put := func(i int, p, id string) { gotPaths[i], gotIDs[i] = p, id }
			pair := func(i int, scratch []byte) (string, []byte) { return paths[i], id(i, scratch) }
			packListing(n, pair, put)
			var all []string
			for i := range n {
				if gotPaths[i] != paths[i] || gotIDs[i] != string(id(i, nil)) {
					t.Errorf("pair %d = %q, %q, want %q, %q", i, gotPaths[i], gotIDs[i], paths[i], id(i, nil))
				}
				all = append(all, gotPaths[i], gotIDs[i])
			}
			assertPacked(t, "packListing", all)
			// The block and the scratch buffer pair appends to are
			// allocated, whatever the number of pairs.
			pair = func(i int, scratch []byte) (string, []byte) { return paths[i], append(scratch, "0123456789abcdef"...) }
			want := 2.0
			if n == 0 {
				want = 0
			}
			if allocs := testing.AllocsPerRun(10, func() { packListing(n, pair, put) }); allocs != want {
				t.Errorf("packListing of %d pairs: %v allocations, want %v (the block and a scratch buffer)", n, allocs, want)
			}
		})
	}
}
