package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// diffReport is the JSON plan of `certops diff --format json`.
type diffReport struct {
	Changes []struct {
		Action string `json:"action"`
		Name   string `json:"name"`
		File   string `json:"file"`
		Fields []struct {
			Field string `json:"field"`
		} `json:"fields"`
	} `json:"changes"`
	Summary struct {
		Create, Update, Delete, Unchanged int
	} `json:"summary"`
}

// diffRepo is a git repository with two revisions: base holds shop, api
// and gone; head rotates shop's certificate and key and adds a name to
// it, relabels api, deletes gone and creates new.
type diffRepo struct {
	dir              string
	base, head       string
	shopOld, shopNew *testLeaf
	leaves           []*testLeaf // every leaf, for the leak scan
}

func newDiffRepo(tb testing.TB) *diffRepo {
	tb.Helper()
	ca := newCA(tb, "diff CA")
	r := &diffRepo{dir: newGitRepo(tb).work}
	r.shopOld = ca.issue(tb, algECDSA, "shop.test", []string{"shop.test"})
	r.shopNew = ca.issue(tb, algRSA, "shop.test", []string{"shop.test", "www.shop.test"})
	api := ca.issue(tb, algECDSA, "api.test", []string{"api.test"})
	gone := ca.issue(tb, algECDSA, "gone.test", []string{"gone.test"})
	added := ca.issue(tb, algECDSA, "new.test", []string{"new.test"})
	r.leaves = []*testLeaf{r.shopOld, r.shopNew, api, gone, added}

	writeFile(tb, r.dir, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{r.shopOld}}.yaml())
	writeFile(tb, r.dir, "api.yaml", entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{api}, extra: "labels:\n  team: api\n"}.yaml())
	writeFile(tb, r.dir, "gone.yaml", entity{name: "gone", snis: []string{"gone.test"}, chains: []*testLeaf{gone}}.yaml())
	git(tb, r.dir, "add", "-A")
	git(tb, r.dir, "commit", "-q", "-m", "base")
	r.base = strings.TrimSpace(git(tb, r.dir, "rev-parse", "HEAD"))

	writeFile(tb, r.dir, "shop.yaml", entity{name: "shop", snis: []string{"shop.test", "www.shop.test"}, chains: []*testLeaf{r.shopNew}}.yaml())
	writeFile(tb, r.dir, "api.yaml", entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{api}, extra: "labels:\n  team: platform\n"}.yaml())
	removeFile(tb, r.dir, "gone.yaml")
	writeFile(tb, r.dir, "new.yaml", entity{name: "new", snis: []string{"new.test"}, chains: []*testLeaf{added}}.yaml())
	git(tb, r.dir, "add", "-A")
	git(tb, r.dir, "commit", "-q", "-m", "head")
	r.head = strings.TrimSpace(git(tb, r.dir, "rev-parse", "HEAD"))
	return r
}

// TestDiff runs `certops diff` between two revisions of a real repository
// in every format and checks the plan, the summary and the exit codes
// (DESIGN.md 4).
func TestDiff(t *testing.T) {
	requireBinary(t)
	r := newDiffRepo(t)
	revs := []string{"diff", "--repo", r.dir, "--base", r.base, "--head", r.head}

	t.Run("text", func(t *testing.T) {
		res := certops(t, r.dir, nil, revs...)
		if res.code != 0 {
			t.Fatalf("diff: exit %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
		}
		for _, want := range []string{
			"~ update shop", "+ create new", "- delete gone", "~ update api",
			fmt.Sprintf("%x", r.shopOld.cert.SerialNumber), fmt.Sprintf("%x", r.shopNew.cert.SerialNumber),
			"www.shop.test", "team=platform",
			"1 to create, 2 to update, 1 to delete",
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("diff text output lacks %q:\n%s", want, res.stdout)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		res := certops(t, r.dir, nil, append(revs, "--format", "json")...)
		var rep diffReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 {
			t.Fatalf("diff --format json: exit %d, %v in %q", res.code, err, res.stdout)
		}
		got := map[string]string{}
		for _, c := range rep.Changes {
			got[c.Name] = c.Action
		}
		want := map[string]string{"shop": "update", "api": "update", "gone": "delete", "new": "create"}
		for name, action := range want {
			if got[name] != action {
				t.Errorf("diff --format json: %s is %q, want %q (changes %v)", name, got[name], action, got)
			}
		}
		if s := rep.Summary; s.Create != 1 || s.Update != 2 || s.Delete != 1 {
			t.Errorf("diff --format json: summary %+v, want 1 create, 2 update, 1 delete", s)
		}
	})

	t.Run("markdown", func(t *testing.T) {
		res := certops(t, r.dir, nil, append(revs, "--format", "markdown")...)
		if res.code != 0 || !strings.Contains(res.stdout, "| `~` update | `shop`") || !strings.Contains(res.stdout, "1 to create, 2 to update, 1 to delete") {
			t.Errorf("diff --format markdown: exit %d, want 0, a row for shop and the summary:\n%s", res.code, res.stdout)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		if res := certops(t, r.dir, nil, append(revs, "--exit-code")...); res.code != 2 {
			t.Errorf("diff --exit-code with changes: exit %d, want 2", res.code)
		}
		same := []string{"diff", "--repo", r.dir, "--base", r.head, "--head", r.head, "--exit-code"}
		if res := certops(t, r.dir, nil, same...); res.code != 0 || !strings.Contains(res.stdout, "0 to create, 0 to update, 0 to delete") {
			t.Errorf("diff --exit-code without changes: exit %d, want 0 and an empty plan:\n%s", res.code, res.stdout)
		}
		if res := certops(t, r.dir, nil, "diff", "--repo", r.dir, "--base", "no-such-revision"); res.code != 1 || res.stderr == "" {
			t.Errorf("diff --base no-such-revision: exit %d, stderr %q; want 1 and an error", res.code, res.stderr)
		}
	})

	t.Run("invalid head", func(t *testing.T) {
		leaf := r.leaves[2]
		bad := *leaf
		bad.keyPEM = r.leaves[3].keyPEM
		writeFile(t, r.dir, "api.yaml", entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{&bad}}.yaml())
		// Without --head the working tree is compared, uncommitted changes
		// included.
		res := certops(t, r.dir, nil, "diff", "--repo", r.dir, "--base", r.head)
		git(t, r.dir, "checkout", "-q", "--", "api.yaml")
		if res.code != 1 || !strings.Contains(res.stdout+res.stderr, "api.yaml:") {
			t.Errorf("diff against an invalid working tree: exit %d, want 1 and the error's position in api.yaml:\n%s%s", res.code, res.stdout, res.stderr)
		}
	})
}
