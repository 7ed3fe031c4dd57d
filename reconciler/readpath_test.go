package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/schema"
	"certops/source"

	"github.com/google/go-cmp/cmp"
)

// servedEntity is what a gateway serves of an entity, as the property test
// of issue 18 item 2 compares it.
type servedEntity struct {
	Name         string
	SNIs         []string
	Fingerprints []string
	ClientCA     string
	Protocols    []string
	Labels       map[string]string
	Disabled     bool
}

func describeServed(tb testing.TB, entities []*schema.Entity) []servedEntity {
	tb.Helper()
	var out []servedEntity
	for _, e := range entities {
		m, err := e.Material(schema.Literal)
		if err != nil {
			tb.Fatalf("entity %s: %v", e.Name, err)
		}
		s := servedEntity{Name: e.Name, SNIs: e.SNIs, ClientCA: e.ClientCA, Protocols: e.Protocols, Labels: e.Labels, Disabled: e.Disabled}
		for _, c := range m.Chains {
			sum := sha256.Sum256(c.Certificate[0])
			s.Fingerprints = append(s.Fingerprints, hex.EncodeToString(sum[:]))
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b servedEntity) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TestValidatedIsServed is the property of issue 18 item 2: for any tree,
// the entities `validate` reports (schema.Load on the folder) are the
// entities `run --source DIR` serves (the folder source, then the
// reconciler's loader), and a tree one refuses the other refuses. Trees
// are generated at random from fixed seeds, with entities as files, as
// symbolic links inside the root (into a dot-folder, as a store of
// reviewed files), links leaving the root, links to folders, named pipes
// and files that are not entities.
func TestValidatedIsServed(t *testing.T) {
	ca := fixtures.NewRootCA(t, "property CA")
	clientCA := fixtures.NewRootCA(t, "property client CA")
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "stray.yaml"), []byte(fixtures.EntityYAML(fixtures.Entity{
		Name: "stray", SNIs: []string{"stray.example.com"}, Chains: []*fixtures.Leaf{ca.Server(t, "stray.example.com")}})), 0o644); err != nil {
		t.Fatal(err)
	}
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	valid := 0
	for seed := range uint64(rounds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 18))
			dir := t.TempDir()
			write := func(p, content string) {
				full := filepath.Join(dir, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			link := func(p, target string) {
				full := filepath.Join(dir, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, full); err != nil {
					t.Skipf("symbolic links not supported: %v", err)
				}
			}
			folders := []string{"", "certs/", "certs/eu/", "team-a/"}
			for i := range 1 + r.IntN(5) {
				name := fmt.Sprintf("e%d", i)
				e := fixtures.Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []*fixtures.Leaf{ca.Server(t, name+".example.com")}}
				if r.IntN(3) == 0 {
					e.ClientCA = clientCA
				}
				if r.IntN(3) == 0 {
					e.Protocols = []string{"TLSv1.3"}
				}
				if r.IntN(2) == 0 {
					e.Labels = map[string]string{"team": fmt.Sprint("t", r.IntN(3))}
				}
				at := folders[r.IntN(len(folders))] + name + ".yaml"
				switch r.IntN(3) {
				case 0: // a plain file
					write(at, fixtures.EntityYAML(e))
				case 1: // a link into a store of reviewed files
					write(".store/"+name+".yaml", fixtures.EntityYAML(e))
					link(at, strings.Repeat("../", strings.Count(at, "/"))+".store/"+name+".yaml")
				case 2: // a link to a link
					write(".store/"+name+".yaml", fixtures.EntityYAML(e))
					link(".store/"+name+"-current.yaml", name+".yaml")
					link(at, strings.Repeat("../", strings.Count(at, "/"))+".store/"+name+"-current.yaml")
				}
			}
			write("README.md", "# certificates\n")
			if r.IntN(3) == 0 {
				link("mirror", "certs") // a link to a folder is not followed
			}
			if r.IntN(5) == 0 {
				link("stray.yaml", filepath.Join(outside, "stray.yaml")) // leaves the root
			}
			if r.IntN(6) == 0 {
				if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
					t.Logf("no named pipe: %v", err)
				}
			}

			opts := schema.Options{WarnWithin: time.Nanosecond} // fixtures' leaves expire in a day
			validated, err := schema.Load(os.DirFS(dir), opts)
			if err != nil {
				t.Fatal(err)
			}
			origin, err := source.NewDir(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := origin.Fetch(t.Context())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			loaded, err := newLoader("", opts).load(context.Background(), tree)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			vErr, lErr := validated.Problems.Err(), loaded.problems().Err()
			if (lErr != nil) != loaded.failed() {
				t.Errorf("load failed() = %v, its problems %v", loaded.failed(), lErr)
			}
			loadedEntities, _ := loaded.entities()
			if (vErr == nil) != (lErr == nil) {
				t.Fatalf("validate says %v\nrun says %v\ntree: %s", vErr, lErr, listTree(t, dir))
			}
			if vErr != nil {
				return // both refuse the revision: run keeps serving the last one
			}
			valid++
			if diff := cmp.Diff(describeServed(t, validated.Entities), describeServed(t, loadedEntities)); diff != "" {
				t.Errorf("validated entities differ from served entities (-validate +run):\n%s\ntree: %s", diff, listTree(t, dir))
			}
		})
	}
	if valid < rounds/4 {
		t.Errorf("only %d of %d generated trees were valid; the property is barely exercised", valid, rounds)
	}
}

func listTree(tb testing.TB, dir string) string {
	tb.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		s := filepath.ToSlash(rel)
		if d.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			s += " -> " + target
		}
		out = append(out, s)
		return nil
	})
	return strings.Join(out, ", ")
}

// TestGitSymlinksFollowTheReadingRule is issue 18 item 2 for Git trees: a
// symlink entry is served as its target blob when the target is inside the
// tree, exactly as `validate` reads the checked-out folder; one leaving the
// tree is a problem in both.
func TestGitSymlinksFollowTheReadingRule(t *testing.T) {
	ca := fixtures.NewRootCA(t, "git link CA")
	shop, _ := entity(t, ca, "shop", "shop.example.com")
	api, _ := entity(t, ca, "api", "api.example.com")
	for _, tt := range []struct {
		name      string
		links     map[string]string
		wantValid bool
	}{
		{"inside", map[string]string{"certs/shop.yaml": "../.store/shop.yaml", "mirror": "certs"}, true},
		{"outside", map[string]string{"certs/shop.yaml": "../.store/shop.yaml", "stray.yaml": "../../stray.yaml"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fixtures.NewGitRepo(t)
			fixtures.WriteFilesTo(t, r.Work, map[string]string{".store/shop.yaml": shop, "api.yaml": api, "README.md": "# x\n"})
			for p, target := range tt.links {
				full := filepath.Join(r.Work, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, full); err != nil {
					t.Skipf("symbolic links not supported: %v", err)
				}
			}
			head := r.Commit(t, "links", nil)
			opts := schema.Options{WarnWithin: time.Nanosecond}
			validated, err := schema.Load(os.DirFS(r.Work), opts)
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := source.OpenRevision(t.Context(), r.Work, head)
			if err != nil {
				t.Fatal(err)
			}
			tree := fsys.(*source.Tree)
			// diff --base reads the same revision as an fs.FS: it must see
			// what run serves too.
			described, err := schema.Load(fsys, opts)
			if err != nil {
				t.Fatal(err)
			}
			if (described.Problems.Err() == nil) != tt.wantValid {
				t.Fatalf("diff's load of the revision says %v; want valid %v", described.Problems.Err(), tt.wantValid)
			}
			loaded, err := newLoader("", opts).load(context.Background(), tree)
			if err != nil {
				t.Fatal(err)
			}
			vErr, lErr := validated.Problems.Err(), loaded.problems().Err()
			if (lErr != nil) != loaded.failed() {
				t.Errorf("load failed() = %v, its problems %v", loaded.failed(), lErr)
			}
			loadedEntities, _ := loaded.entities()
			if (vErr == nil) != tt.wantValid || (lErr == nil) != tt.wantValid {
				t.Fatalf("validate says %v; run says %v; want valid %v", vErr, lErr, tt.wantValid)
			}
			if !tt.wantValid {
				return
			}
			if diff := cmp.Diff(describeServed(t, validated.Entities), describeServed(t, loadedEntities)); diff != "" {
				t.Errorf("validated entities differ from served entities (-validate +run):\n%s", diff)
			}
			if diff := cmp.Diff(describeServed(t, described.Entities), describeServed(t, loadedEntities)); diff != "" {
				t.Errorf("diff's entities differ from served entities (-diff +run):\n%s", diff)
			}
			if len(loadedEntities) != 2 {
				t.Errorf("served %d entities, want shop (through its link) and api", len(loadedEntities))
			}
		})
	}
}

// TestDisabledIsNotServed is issue 18 item 3 in the daemon: an APISIX SSL
// with status: 0 is described as disabled and not served, and does not
// keep the enabled SSL on the same SNI from being served, nor the proof of
// the served state from verifying it.
func TestDisabledIsNotServed(t *testing.T) {
	ca := fixtures.NewRootCA(t, "status CA")
	old := ca.Server(t, "shop.example.com")
	cur := ca.Server(t, "shop.example.com")
	item := func(id, status string, l *fixtures.Leaf) string {
		return "  - id: " + id + "\n    status: " + status + "\n    snis: [shop.example.com]\n    cert: |\n" +
			indentLines(string(l.ChainPEM), "      ") + "    key: |\n" + indentLines(string(l.KeyPEM), "      ")
	}
	fsys := fstest.MapFS{"apisix.yaml": {Data: []byte("ssls:\n" + item("shop-old", "0", old) + item("shop", "1", cur))}}
	gw := startGateway(t, ca)
	prover := NewProver(gw.addr, nil, nil)
	rec := New(Options{FS: fsys, Gateway: gw, Sinks: []Sink{prover}})
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "shop.example.com", cur)
	// The proof of the served state probes what is served: the disabled
	// SSL's SNI answers with the enabled one's leaf, which is no mismatch.
	prover.Wait(t.Context())
	if p := prover.Result(); !p.Verified || p.Probes != 1 || len(p.Mismatches) != 0 {
		t.Errorf("proof = %+v, want verified with 1 probe (the enabled SSL's)", p)
	}
	disabled := map[string]bool{}
	for _, info := range rec.Entities() {
		disabled[info.Name] = info.Disabled
	}
	if want := map[string]bool{"shop-old": true, "shop": false}; !maps.Equal(disabled, want) {
		t.Errorf("Entities() disabled = %v, want %v", disabled, want)
	}
}

func indentLines(s, prefix string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}
