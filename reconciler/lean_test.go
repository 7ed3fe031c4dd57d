package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"certops/fixtures"
	"certops/gateway"
	"certops/schema"
	"certops/source"
)

// refusingOnce is a real gateway that refuses the next refuse
// configurations, full or incremental, as a gateway refuses a Config.
type refusingOnce struct {
	*testGateway
	refuse int
}

func (g *refusingOnce) Apply(cfg gateway.Config) error {
	if g.refuse > 0 {
		g.refuse--
		return errors.New("refused by the test")
	}
	return g.Server.Apply(cfg)
}

func (g *refusingOnce) ApplyChanges(changed []gateway.Entity, removed []string) error {
	if g.refuse > 0 {
		g.refuse--
		return errors.New("refused by the test")
	}
	return g.Server.ApplyChanges(changed, removed)
}

// TestLeanEntitiesRebuild checks that the loader keeps the entities it
// caches lean (no PEM text) and that a rebuild after a gateway refusal,
// which parses every entity again, reads their files again and serves
// them.
func TestLeanEntitiesRebuild(t *testing.T) {
	ca := fixtures.NewRootCA(t, "lean CA")
	shop, shopLeaf := entity(t, ca, "shop", "shop.example.com")
	api, _ := entity(t, ca, "api", "api.example.com")
	fsys := fstest.MapFS{"shop.yaml": {Data: []byte(shop)}, "api.yaml": {Data: []byte(api)}}
	gw := &refusingOnce{testGateway: startGateway(t, ca)}
	rec := New(Options{FS: fsys, Gateway: gw})
	var reread []string
	read := rec.loader.opts.Reread
	rec.loader.opts.Reread = func(p string) ([]byte, error) {
		reread = append(reread, p)
		return read(p)
	}

	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "shop.example.com", shopLeaf)
	if len(reread) != 0 {
		t.Errorf("files read again by the first apply = %q, want none", reread)
	}
	for i := range rec.loader.last.files.Len() {
		r := rec.loader.last.files.File(i)
		p := r.Path
		for _, e := range r.Entities {
			if !e.Lean() {
				t.Errorf("entity %s of %s: Lean() = false, want true", e.Name, p)
			}
			for i, ch := range e.Chains {
				if ch.Cert != "" || ch.Key != "" {
					t.Errorf("entity %s chain %d keeps its PEM text", e.Name, i)
				}
			}
		}
	}

	api2, _ := entity(t, ca, "api", "api.example.com")
	fsys["api.yaml"] = &fstest.MapFile{Data: []byte(api2)}
	gw.refuse = 1
	wantResult(t, reconcileNow(t, rec), ResultStalled)

	// The next revision is built from scratch: shop, unchanged and lean,
	// is parsed again from its file.
	api3, api3Leaf := entity(t, ca, "api", "api.example.com")
	fsys["api.yaml"] = &fstest.MapFile{Data: []byte(api3)}
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "shop.example.com", shopLeaf)
	gw.wantServed(t, "api.example.com", api3Leaf)
	if len(reread) != 1 || reread[0] != "shop.yaml" {
		t.Errorf("files read again = %q, want [shop.yaml]", reread)
	}
}

// sinkFunc is a Sink of a function, which might read anything.
type sinkFunc func(ctx context.Context, rev *AppliedRevision) error

func (f sinkFunc) Apply(ctx context.Context, rev *AppliedRevision) error { return f(ctx, rev) }

// TestNeedsPEM checks which sinks keep the loader's entities whole.
func TestNeedsPEM(t *testing.T) {
	tests := []struct {
		name  string
		sinks []Sink
		want  bool
	}{
		{"none", nil, false},
		{"prover", []Sink{NewProver("127.0.0.1:1", nil, nil)}, false},
		{"other sink", []Sink{NewProver("127.0.0.1:1", nil, nil), sinkFunc(nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsPEM(tt.sinks); got != tt.want {
				t.Errorf("needsPEM(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestLeanRereadFollowsLinks checks that a lean entity whose file is a
// symbolic link in a Git tree (a blob holding the target's path) is read
// again from the file the link leads to, as the load read it.
func TestLeanRereadFollowsLinks(t *testing.T) {
	ca := fixtures.NewRootCA(t, "lean link CA")
	shop, _ := entity(t, ca, "shop", "shop.example.com")
	r := fixtures.NewGitRepo(t)
	fixtures.WriteFilesTo(t, r.Work, map[string]string{".store/shop.yaml": shop})
	if err := os.MkdirAll(filepath.Join(r.Work, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../.store/shop.yaml", filepath.Join(r.Work, "certs", "shop.yaml")); err != nil {
		t.Skipf("symbolic links not supported: %v", err)
	}
	head := r.Commit(t, "a link", nil)
	fsys, err := source.OpenRevision(t.Context(), r.Work, head)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoader("", schema.Options{}).leanWhen(true)
	loaded, err := l.load(t.Context(), fsys.(*source.Tree))
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := loaded.entities(); len(es) != 1 || !es[0].Lean() {
		t.Fatalf("loaded %d entities (lean: %v), want shop, lean", len(es), len(es) == 1 && es[0].Lean())
	}
	got, err := l.reread("certs/shop.yaml")
	if err != nil || string(got) != shop {
		t.Errorf("reread(certs/shop.yaml) = %d bytes, %v; want the %d bytes of .store/shop.yaml", len(got), err, len(shop))
	}
}
