package reconciler

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/source"
)

// mapResolver is a Resolver over a map of reference -> value; it fakes the
// secrets seam (the secrets package tests the real stores).
type mapResolver struct {
	mu       sync.Mutex
	values   map[string]string
	err      error
	stale    map[string]error
	calls    int
	retained []string // the last Retain call's references, sorted
}

func (m *mapResolver) Retain(refs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained = slices.Sorted(slices.Values(refs))
}

func (m *mapResolver) Resolve(_ context.Context, ref string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return nil, m.err
	}
	v, ok := m.values[ref]
	if !ok {
		return nil, fmt.Errorf("%s: not found", ref)
	}
	return []byte(v), nil
}

func (m *mapResolver) Stale(ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stale[ref]
}

func (m *mapResolver) set(ref, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[ref] = value
}

const refEntity = `name: vault-shop
snis: [vault.example.com]
cert: $env://SHOP_CERT
key: $secret://vault/kv/tls/shop/key
`

func TestSecretReferences(t *testing.T) {
	ca := fixtures.NewRootCA(t, "secrets CA")
	l1 := ca.Server(t, "vault.example.com")
	l2 := ca.Server(t, "vault.example.com")
	res := &mapResolver{values: map[string]string{
		"$env://SHOP_CERT":                string(l1.ChainPEM),
		"$secret://vault/kv/tls/shop/key": string(l1.KeyPEM),
	}}
	fsys := fstest.MapFS{"shop.yaml": {Data: []byte(refEntity)}}
	gw := startGateway(t, ca)
	var reports []RunReport
	rec := New(Options{FS: fsys, Gateway: gw, Secrets: res, Observe: func(r RunReport) { reports = append(reports, r) }})

	t.Run("resolved and served", func(t *testing.T) {
		wantResult(t, reconcileNow(t, rec), ResultApplied)
		gw.wantServed(t, "vault.example.com", l1)
		info := rec.Entities()[0]
		if info.Chains[0].CertRef != "$env://SHOP_CERT" || info.Chains[0].KeyRef != "$secret://vault/kv/tls/shop/key" {
			t.Errorf("refs = %+v", info.Chains[0])
		}
		if info.Chains[0].Serial != l1.Cert.SerialNumber.Text(16) {
			t.Errorf("serial = %s, want the resolved certificate's", info.Chains[0].Serial)
		}
	})

	t.Run("same values: nothing to do", func(t *testing.T) {
		wantResult(t, reconcileNow(t, rec), ResultUnchanged)
	})

	t.Run("rotated value applied without a commit", func(t *testing.T) {
		res.set("$env://SHOP_CERT", string(l2.ChainPEM))
		res.set("$secret://vault/kv/tls/shop/key", string(l2.KeyPEM))
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultApplied)
		gw.wantServed(t, "vault.example.com", l2)
		if p := rec.Status().Plan; p == nil || p.Update != 1 {
			t.Errorf("plan = %+v, want one update", p)
		}
	})

	// Issue 17.4: a rotation of the served revision applies per entity; an
	// entity whose rotated pair does not match keeps its last good pair
	// and is reported degraded.
	t.Run("bad rotated value: last good pair kept", func(t *testing.T) {
		res.set("$secret://vault/kv/tls/shop/key", string(l1.KeyPEM)) // does not match l2
		defer res.set("$secret://vault/kv/tls/shop/key", string(l2.KeyPEM))
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultUnchanged)
		gw.wantServed(t, "vault.example.com", l2)
		var reason string
		for _, d := range rec.Status().Degraded {
			if d.Entity == "vault-shop" {
				reason = d.Reason
			}
		}
		if !strings.Contains(reason, "last good") || !strings.Contains(reason, "does not match") {
			t.Errorf("degraded reason of vault-shop = %q, want the mismatch and that the last good pair is kept", reason)
		}
		noPrivateKey(t, "degraded reason", reason, l1, l2)
	})

	t.Run("store unreachable: retryable", func(t *testing.T) {
		fsys["shop.yaml"] = &fstest.MapFile{Data: []byte(refEntity + "labels: {team: a}\n")}
		res.err = errors.New("vault: connection refused")
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultFailed)
		if !strings.Contains(problemsText(att.Errors), "connection refused") {
			t.Errorf("errors = %v", att.Errors)
		}
		gw.wantServed(t, "vault.example.com", l2)
		res.err = nil
		wantResult(t, reconcileNow(t, rec), ResultApplied)
	})

	t.Run("stale value degrades", func(t *testing.T) {
		res.stale = map[string]error{"$env://SHOP_CERT": errors.New("refresh failed")}
		res.set("$env://SHOP_CERT", string(l2.ChainPEM)+"\n") // a change, so the run applies
		reconcileNow(t, rec)
		d := rec.Status().Degraded
		if len(d) != 1 || d[0].Entity != "vault-shop" {
			t.Errorf("degraded = %+v, want vault-shop", d)
		}
	})

	l3 := ca.Server(t, "vault.example.com")
	t.Run("rotation applied while a newer revision is refused", func(t *testing.T) {
		fsys["broken.yaml"] = &fstest.MapFile{Data: []byte("name: broken\ncert: 42\n")}
		wantResult(t, reconcileNow(t, rec), ResultStalled)
		res.set("$env://SHOP_CERT", string(l3.ChainPEM))
		res.set("$secret://vault/kv/tls/shop/key", string(l3.KeyPEM))
		wantResult(t, reconcileNow(t, rec), ResultStalled)
		gw.wantServed(t, "vault.example.com", l3)
		if s := rec.Entities()[0].Chains[0].Serial; s != l3.Cert.SerialNumber.Text(16) {
			t.Errorf("entities show serial %s, want the rotated %s", s, l3.Cert.SerialNumber.Text(16))
		}
		delete(fsys, "broken.yaml")
	})

	t.Run("degraded reason follows the latest failure", func(t *testing.T) {
		reason := func() string {
			t.Helper()
			d := rec.Status().Degraded
			if len(d) != 1 {
				t.Fatalf("degraded = %+v, want vault-shop", d)
			}
			return d[0].Reason
		}
		const ref = "$env://SHOP_CERT"
		res.stale = map[string]error{ref: errors.New("refresh failed: connection refused")}
		reconcileNow(t, rec)
		res.stale = map[string]error{ref: errors.New("refresh failed: 403 permission denied")}
		reconcileNow(t, rec)
		if r := reason(); !strings.Contains(r, "403") {
			t.Errorf("degraded reason %q after a second, different failure; want the latest (403)", r)
		}
		// The same while a newer revision is refused.
		fsys["broken.yaml"] = &fstest.MapFile{Data: []byte("name: broken\ncert: 42\n")}
		wantResult(t, reconcileNow(t, rec), ResultStalled)
		res.stale = map[string]error{ref: errors.New("refresh failed: i/o timeout")}
		wantResult(t, reconcileNow(t, rec), ResultStalled)
		if r := reason(); !strings.Contains(r, "timeout") {
			t.Errorf("degraded reason %q with a refused revision; want the latest (timeout)", r)
		}
		delete(fsys, "broken.yaml")
		res.stale = nil
		reconcileNow(t, rec)
		if d := rec.Status().Degraded; len(d) != 0 {
			t.Errorf("degraded = %+v after recovery, want none", d)
		}
	})

	t.Run("half-done rotation refused, then applied once completed, without a commit", func(t *testing.T) {
		l4 := ca.Server(t, "vault.example.com")
		res.set("$env://SHOP_CERT", string(l4.ChainPEM)) // the key is still l3's
		// Issue 17.4: the entity keeps its last good pair (degraded); the
		// attempt itself changes nothing.
		wantResult(t, reconcileNow(t, rec), ResultUnchanged)
		gw.wantServed(t, "vault.example.com", l3)
		if !strings.Contains(fmt.Sprintf("%+v", rec.Status().Degraded), "vault-shop Reason:keeps its last good material") {
			t.Errorf("degraded = %+v, want vault-shop keeping its last good material", rec.Status().Degraded)
		}
		res.set("$secret://vault/kv/tls/shop/key", string(l4.KeyPEM))
		wantResult(t, reconcileNow(t, rec), ResultApplied)
		gw.wantServed(t, "vault.example.com", l4)
	})

	t.Run("client CA reference described", func(t *testing.T) {
		clientCA := fixtures.NewRootCA(t, "client CA")
		res.set("$env://CLIENT_CA", string(clientCA.CertPEM))
		fsys["shop.yaml"] = &fstest.MapFile{Data: []byte(refEntity + "client:\n  ca: $env://CLIENT_CA\n")}
		wantResult(t, reconcileNow(t, rec), ResultApplied)
		ca := rec.Entities()[0].ClientCA
		if len(ca) != 1 || ca[0].CertRef != "$env://CLIENT_CA" || ca[0].Fingerprint != fmt.Sprintf("%x", sha256.Sum256(clientCA.Cert.Raw)) {
			t.Errorf("client CA = %+v, want the resolved CA with its reference", ca)
		}
	})

	t.Run("no resolver", func(t *testing.T) {
		rec := New(Options{FS: fsys, Gateway: startGateway(t, ca)})
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultFailed)
		if !strings.Contains(problemsText(att.Errors), "no secret resolver configured") {
			t.Errorf("errors = %v", att.Errors)
		}
	})

	if len(reports) == 0 || reports[0].Result != ResultApplied || reports[0].Phases[PhaseApply] == 0 {
		t.Errorf("Observe reports = %+v, want the first applied with an apply phase", reports)
	}
}

// TestDirOrigin follows a plain folder with fsnotify, including an editor
// that saves by writing a temporary file and renaming it.
func TestDirOrigin(t *testing.T) {
	ca := fixtures.NewRootCA(t, "dir CA")
	y1, l1 := entity(t, ca, "shop", "shop.example.com")
	dir := fixtures.WriteFiles(t, map[string]string{"shop.yaml": y1, ".hidden/x.yaml": "not: valid: yaml: ["})
	origin, err := source.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, ca)
	rec := New(Options{Source: origin, Gateway: gw})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitServed := func(sni string, leaf *fixtures.Leaf) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := gw.served(sni)
			if err == nil && got.SerialNumber.Cmp(leaf.Cert.SerialNumber) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not served with serial %x (last: %v); status %+v", sni, leaf.Cert.SerialNumber, err, rec.Status().LastAttempt)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitServed("shop.example.com", l1)

	y2, l2 := entity(t, ca, "shop", "shop.example.com")
	tmp := filepath.Join(dir, ".shop.yaml.swp")
	if err := os.WriteFile(tmp, []byte(y2), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "shop.yaml")); err != nil {
		t.Fatal(err)
	}
	waitServed("shop.example.com", l2)

	y3, l3 := entity(t, ca, "api", "api.example.com")
	fixtures.WriteFilesTo(t, dir, map[string]string{"new/folder/api.yaml": y3})
	waitServed("api.example.com", l3)
}

func TestNoSource(t *testing.T) {
	att := reconcileNow(t, New(Options{Gateway: &countingGateway{}}))
	wantResult(t, att, ResultFailed)
	if !strings.Contains(problemsText(att.Errors), "no source configured") {
		t.Errorf("errors = %v", att.Errors)
	}
}

// TestRetainAppliedReferences: after a revision is applied the resolver
// is told which references it still needs, so a cache stops refreshing the
// ones that no entity uses any more; a refused revision tells it nothing.
func TestRetainAppliedReferences(t *testing.T) {
	ca := fixtures.NewRootCA(t, "retain CA")
	l1, l2 := ca.Server(t, "vault.example.com"), ca.Server(t, "vault.example.com")
	res := &mapResolver{values: map[string]string{
		"$env://SHOP_CERT":                string(l1.ChainPEM),
		"$secret://vault/kv/tls/shop/key": string(l1.KeyPEM),
		"$env://NEW_CERT":                 string(l2.ChainPEM),
		"$env://NEW_KEY":                  string(l2.KeyPEM),
	}}
	fsys := fstest.MapFS{"shop.yaml": {Data: []byte(refEntity)}}
	rec := New(Options{FS: fsys, Gateway: startGateway(t, ca), Secrets: res})
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	want := []string{"$env://SHOP_CERT", "$secret://vault/kv/tls/shop/key"}
	if !slices.Equal(res.retained, want) {
		t.Errorf("retained = %q, want %q", res.retained, want)
	}

	fsys["shop.yaml"] = &fstest.MapFile{Data: []byte("name: vault-shop\nsnis: [vault.example.com]\ncert: $env://NEW_CERT\nkey: $env://NEW_KEY\n")}
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	want = []string{"$env://NEW_CERT", "$env://NEW_KEY"}
	if !slices.Equal(res.retained, want) {
		t.Errorf("retained after the references changed = %q, want %q", res.retained, want)
	}

	fsys["broken.yaml"] = &fstest.MapFile{Data: []byte("name: broken\ncert: $env://OTHER\n")}
	wantResult(t, reconcileNow(t, rec), ResultStalled)
	if !slices.Equal(res.retained, want) {
		t.Errorf("retained after a refused revision = %q, want still %q", res.retained, want)
	}
}

// keyCheckingGateway records, for each Apply or ApplyChanges, which
// entities it was given and whether every chain came with its key, and
// refuses one call when refuse is set.
type keyCheckingGateway struct {
	*testGateway
	refuse bool
	calls  []string // per call: "apply" or "changes", the entities, "keys" or "no keys"
}

func (g *keyCheckingGateway) record(kind string, entities []gateway.Entity) error {
	all := "keys"
	var names []string
	for _, e := range entities {
		names = append(names, e.Name)
		for _, c := range e.Chains {
			if c.PrivateKey == nil {
				all = "no keys"
			}
		}
	}
	g.calls = append(g.calls, fmt.Sprintf("%s %v %s", kind, names, all))
	if g.refuse {
		g.refuse = false
		return errors.New("refused")
	}
	return nil
}

func (g *keyCheckingGateway) Apply(cfg gateway.Config) error {
	if err := g.record("apply", cfg.Entities); err != nil {
		return err
	}
	return g.testGateway.Apply(cfg)
}

func (g *keyCheckingGateway) ApplyChanges(changed []gateway.Entity, removed []string) error {
	if err := g.record("changes", changed); err != nil {
		return err
	}
	return g.testGateway.ApplyChanges(changed, removed)
}

// fullOnly hides ApplyChanges: an Applier without it.
type fullOnly struct{ g *keyCheckingGateway }

func (f fullOnly) Apply(cfg gateway.Config) error { return f.g.Apply(cfg) }

// TestUnchangedEntitiesWithoutKeys: an entity applied before is handed to
// the gateway again without its parsed key, which the gateway keeps; after
// the gateway refused an Apply, every entity is built again with its key.
func TestUnchangedEntitiesWithoutKeys(t *testing.T) {
	ca := fixtures.NewRootCA(t, "keys CA")
	ya, la := entity(t, ca, "a", "a.example.com")
	yb, _ := entity(t, ca, "b", "b.example.com")
	dir := fixtures.WriteFiles(t, map[string]string{"a.yaml": ya, "b.yaml": yb})
	origin, err := source.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := &keyCheckingGateway{testGateway: startGateway(t, ca)}
	rec := New(Options{Source: origin, Gateway: gw})
	wantResult(t, reconcileNow(t, rec), ResultApplied)

	rotate := func() *fixtures.Leaf {
		t.Helper()
		y, l := entity(t, ca, "b", "b.example.com")
		fixtures.WriteFilesTo(t, dir, map[string]string{"b.yaml": y})
		return l
	}
	lb := rotate()
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "a.example.com", la)
	gw.wantServed(t, "b.example.com", lb)

	gw.refuse = true
	rotate()
	if att := reconcileNow(t, rec); att.Result == ResultApplied {
		t.Fatalf("attempt applied through a refused Apply")
	}
	lb = rotate()
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "a.example.com", la)
	gw.wantServed(t, "b.example.com", lb)

	// The first Apply is whole; a rotation of b hands over b alone, with
	// its key; after a refusal everything is built again with its key,
	// and given whole.
	want := []string{"apply [a b] keys", "changes [b] keys", "changes [b] keys", "apply [a b] keys"}
	if !slices.Equal(gw.calls, want) {
		t.Errorf("gateway calls = %q, want %q", gw.calls, want)
	}
	gw.calls = nil
	gw.testGateway.Server = gateway.New(gateway.Options{}) // not serving: only the calls count
	rec2 := New(Options{Source: origin, Gateway: fullOnly{gw}})
	wantResult(t, reconcileNow(t, rec2), ResultApplied)
	rotate()
	wantResult(t, reconcileNow(t, rec2), ResultApplied)
	// A gateway without ApplyChanges is given the whole Config, the
	// unchanged entity without its key, which the gateway keeps.
	if want := []string{"apply [a b] keys", "apply [a b] no keys"}; !slices.Equal(gw.calls, want) {
		t.Errorf("gateway calls without ApplyChanges = %q, want %q", gw.calls, want)
	}
}

// TestUnservedWhileRefused: an entity left out because its secret does not
// resolve stays reported, not served, while a newer revision is refused,
// and is served as soon as its secret does (the review of 2026-12-04: the
// refused revision's runs rebuilt the served entities alone, and the
// status then said none was degraded).
func TestUnservedWhileRefused(t *testing.T) {
	ca := fixtures.NewRootCA(t, "unserved CA")
	shopYAML, shop := entity(t, ca, "shop", "shop.example.com")
	other := ca.Server(t, "other.example.com")
	res := &mapResolver{values: map[string]string{"$env://OTHER_CERT": string(other.ChainPEM)}} // no key yet
	fsys := fstest.MapFS{
		"shop.yaml":  {Data: []byte(shopYAML)},
		"other.yaml": {Data: []byte("name: other\nsnis: [other.example.com]\ncert: $env://OTHER_CERT\nkey: $env://OTHER_KEY\n")},
	}
	gw := startGateway(t, ca)
	rec := New(Options{FS: fsys, Gateway: gw, Secrets: res})
	unserved := func(when string) {
		t.Helper()
		d := rec.Status().Degraded
		if len(d) != 1 || d[0].Entity != "other" || d[0].Served || !strings.Contains(d[0].Reason, "not served") {
			t.Fatalf("%s: degraded = %+v, want other, not served", when, d)
		}
		gw.wantRefused(t, "other.example.com")
	}

	wantResult(t, reconcileNow(t, rec), ResultApplied)
	gw.wantServed(t, "shop.example.com", shop)
	unserved("at the start")

	fsys["broken.yaml"] = &fstest.MapFile{Data: []byte("name: broken\ncert: 42\n")}
	wantResult(t, reconcileNow(t, rec), ResultStalled)
	wantResult(t, reconcileNow(t, rec), ResultStalled)
	unserved("while a newer revision is refused")

	res.set("$env://OTHER_KEY", string(other.KeyPEM))
	wantResult(t, reconcileNow(t, rec), ResultStalled)
	gw.wantServed(t, "other.example.com", other)
	gw.wantServed(t, "shop.example.com", shop)
	if d := rec.Status().Degraded; len(d) != 0 {
		t.Errorf("degraded = %+v once its secret resolves, want none", d)
	}
}

// TestMaterialErrorPosition: a resolved key that does not match its
// certificate stalls a new revision with an error at the key's line, not
// at the entity's first one, and the reason of an entity left out at a
// start is found by that position too.
func TestMaterialErrorPosition(t *testing.T) {
	ca := fixtures.NewRootCA(t, "position CA")
	l1, other := ca.Server(t, "vault.example.com"), ca.Server(t, "vault.example.com")
	res := &mapResolver{values: map[string]string{
		"$env://SHOP_CERT":                string(l1.ChainPEM),
		"$secret://vault/kv/tls/shop/key": string(other.KeyPEM), // not l1's
	}}
	okYAML, _ := entity(t, ca, "ok", "ok.example.com")
	fsys := fstest.MapFS{"shop.yaml": {Data: []byte(refEntity)}, "ok.yaml": {Data: []byte(okYAML)}}
	rec := New(Options{FS: fsys, Gateway: startGateway(t, ca), Secrets: res})

	wantResult(t, reconcileNow(t, rec), ResultApplied) // a start: ok served, vault-shop left out
	d := rec.Status().Degraded
	if len(d) != 1 || !strings.Contains(d[0].Reason, "does not match") {
		t.Fatalf("degraded at the start = %+v, want vault-shop not served for its key", d)
	}

	res.set("$secret://vault/kv/tls/shop/key", string(l1.KeyPEM))
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	fsys["shop.yaml"] = &fstest.MapFile{Data: []byte(refEntity + "labels: {team: a}\n")}
	res.set("$secret://vault/kv/tls/shop/key", string(other.KeyPEM))
	att := reconcileNow(t, rec)
	wantResult(t, att, ResultStalled)
	if len(att.Errors) == 0 {
		t.Fatal("a stalled revision without errors")
	}
	// refEntity writes key: on its fourth line.
	if p := att.Errors[0].Pos; p.File != "shop.yaml" || p.Line != 4 || p.Col != 6 {
		t.Errorf("error at %s, want shop.yaml:4:6 (the key): %v", p, att.Errors[0])
	}
}
