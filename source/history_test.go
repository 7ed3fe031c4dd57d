package source_test

import (
	"testing"

	"certops/fixtures"
	"certops/source"
)

func TestLastCommits(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	first := repo.Commit(t, "first", map[string]string{"a.yaml": "a", "sub/b.yaml": "b"})
	second := repo.Commit(t, "second", map[string]string{"sub/b.yaml": "b2", "sub/c with space.yaml": "c"})
	got, err := source.LastCommits(t.Context(), repo.Work)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.yaml": first, "sub/b.yaml": second, "sub/c with space.yaml": second}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("LastCommits()[%q] = %q, want %q", p, got[p], c)
		}
	}
	sub, err := source.LastCommits(t.Context(), repo.Work+"/sub")
	if err != nil || sub["b.yaml"] != second {
		t.Errorf("LastCommits(sub)[b.yaml] = %q, %v; want %q (paths relative to the folder)", sub["b.yaml"], err, second)
	}
	if none, err := source.LastCommits(t.Context(), t.TempDir()); err != nil || len(none) != 0 {
		t.Errorf("LastCommits(not a repository) = %v, %v; want empty", none, err)
	}
}
