package schema

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSetCheckerMatchesCheckSet checks random sequences of revisions
// (files added, changed, removed; names and SNIs duplicated within and
// across files; disabled entities) incrementally and in full: the
// problems are the same, in the same order.
func TestSetCheckerMatchesCheckSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	names := []string{"a", "b", "c", "d", "e", "f"}
	snis := []string{"a.example.com", "b.example.com", "*.example.com", "*", "c.example.org"}
	newFile := func(path string) *FileResult {
		f := &FileResult{Path: path}
		for n := range 1 + rng.IntN(2) {
			e := &Entity{Name: names[rng.IntN(len(names))], Pos: Pos{File: path, Line: 1 + 10*n, Col: 1}, Disabled: rng.IntN(6) == 0}
			for _, s := range snis {
				if rng.IntN(4) == 0 {
					e.SNIs = append(e.SNIs, s)
				}
			}
			if rng.IntN(10) == 0 && len(e.SNIs) > 0 {
				e.SNIs = append(e.SNIs, e.SNIs[0]) // listed twice by one entity
			}
			f.Entities = append(f.Entities, e)
		}
		return f
	}
	files := map[string]*FileResult{}
	var c SetChecker
	found := 0
	for step := range 500 {
		for range 1 + rng.IntN(3) {
			path := fmt.Sprintf("d%d/f%d.yaml", rng.IntN(2), rng.IntN(8))
			if rng.IntN(4) == 0 {
				delete(files, path)
			} else {
				files[path] = newFile(path)
			}
		}
		var list []*FileResult
		for _, f := range files {
			list = append(list, f)
		}
		if rng.IntN(2) == 0 {
			slices.SortFunc(list, func(a, b *FileResult) int { return cmpString(a.Path, b.Path) })
		}
		got, want := c.Check(list), CheckSet(list)
		found += len(want)
		if g, w := got.Error(), want.Error(); g != w || len(got) != len(want) {
			t.Fatalf("step %d: SetChecker.Check =\n%s\nwant (CheckSet)\n%s", step, g, w)
		}
	}
	if found == 0 {
		t.Error("no duplicate in any revision: the test checked nothing")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
