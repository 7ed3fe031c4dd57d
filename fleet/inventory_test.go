package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"certops/fixtures"
)

// TestReadInventory publishes three revisions and reads head back for an
// inventory: every entity with its certificate, literal keys blanked and
// references kept, the revision that last changed each blob (none for a
// blob the same since the first manifest), and the signature checked
// against the trusted keys.
func TestReadInventory(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		ca := fixtures.NewRootCA(t, "fleet inventory CA")
		shop, shopLeaf := testEntity(t, ca, "shop")
		api := refEntity(t, ca, "api")
		p := publisher(t, openFleet(t, ns, "prod", Options{}), k, true)
		f := openFleet(t, ns, "prod", Options{})
		if _, err := f.ReadInventory(ctx, nil); !errors.Is(err, ErrNoHead) {
			t.Fatalf("ReadInventory(nothing published) = %v, want ErrNoHead", err)
		}
		if _, err := p.Publish(ctx, "rev1", []Entity{shop, api}); err != nil {
			t.Fatal(err)
		}
		shop2, shop2Leaf := testEntity(t, ca, "shop")
		if _, err := p.Publish(ctx, "rev2", []Entity{shop2, api}); err != nil {
			t.Fatal(err)
		}
		web, webLeaf := testEntity(t, ca, "web")
		if _, err := p.Publish(ctx, "rev3", []Entity{shop2, api, web}); err != nil {
			t.Fatal(err)
		}

		inv, err := f.ReadInventory(ctx, []TrustedKey{k.sign.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if inv.Revision != "rev3" || inv.Sequence != 3 || !inv.Verified || inv.Signer != k.sign.ID() || len(inv.Entities) != 3 {
			t.Fatalf("ReadInventory = %s/%d verified %t signer %s with %d entities; want rev3/3, verified by %s, 3 entities",
				inv.Revision, inv.Sequence, inv.Verified, inv.Signer, len(inv.Entities), k.sign.ID())
		}
		want := []struct {
			name, changed, key string
			sealed             bool
			cert               string
		}{
			{"api", "", api.Doc.Key, false, api.Doc.Cert}, // the same since the first manifest: not told
			{"shop", "rev2", "", true, shop2.Doc.Cert},
			{"web", "rev3", "", true, web.Doc.Cert},
		}
		for i, w := range want {
			e := inv.Entities[i]
			if e.Doc.Name != w.name || e.Changed != w.changed || e.Doc.Key != w.key || e.Sealed != w.sealed || e.Doc.Cert != w.cert || e.File != w.name+".yaml" {
				t.Errorf("entity %d = %s changed %q key %q sealed %t file %s; want %s changed %q key %q sealed %t file %s.yaml",
					i, e.Doc.Name, e.Changed, e.Doc.Key, e.Sealed, e.File, w.name, w.changed, w.key, w.sealed, w.name)
			}
		}
		b, _ := json.Marshal(inv)
		fixtures.LeafScanner(shopLeaf, shop2Leaf, webLeaf).Check(t, "ReadInventory", string(b))

		// Without trusted keys head is read unverified.
		if inv, err := f.ReadInventory(ctx, nil); err != nil || inv.Verified || inv.Revision != "rev3" {
			t.Errorf("ReadInventory(no trusted keys) = %+v, %v; want rev3, not verified", inv, err)
		}
		// A key that did not sign head is refused.
		other := newTestKeys(t)
		if _, err := f.ReadInventory(ctx, []TrustedKey{other.sign.Public()}); !isReason(err, ReasonUntrusted) {
			t.Errorf("ReadInventory(another trusted key) = %v, want an untrusted refusal", err)
		}

		// After a signing-key rotation (the data key stays) the manifests
		// of the old key do not verify under the new one alone: nothing is
		// told past them; with both keys it is.
		p2, err := f.NewPublisher(PublisherOptions{Signing: other.sign, DataKey: k.dk})
		if err != nil {
			t.Fatal(err)
		}
		web2, _ := testEntity(t, ca, "web")
		if _, err := p2.Publish(ctx, "rev4", []Entity{shop2, api, web2}); err != nil {
			t.Fatal(err)
		}
		changed := func(trusted ...TrustedKey) string {
			inv, err := f.ReadInventory(ctx, trusted)
			if err != nil {
				t.Fatal(err)
			}
			var s string
			for _, e := range inv.Entities {
				s += fmt.Sprintf("%s=%s ", e.Doc.Name, e.Changed)
			}
			return s
		}
		if got, want := changed(other.sign.Public()), "api= shop= web= "; got != want {
			t.Errorf("Changed under the new key only = %q, want %q", got, want)
		}
		if got, want := changed(other.sign.Public(), k.sign.Public()), "api= shop=rev2 web=rev4 "; got != want {
			t.Errorf("Changed under both keys = %q, want %q", got, want)
		}
		if got, want := changed(), "api= shop=rev2 web=rev4 "; got != want {
			t.Errorf("Changed unverified = %q, want %q", got, want)
		}
	})
}

// TestReadInventoryOtherFleet: a head naming another fleet is refused.
func TestReadInventoryOtherFleet(t *testing.T) {
	ns := embeddedServer(t)
	ctx := testContext(t)
	k := newTestKeys(t)
	f := openFleet(t, ns, "prod", Options{})
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	env, err := sign(&root{Fleet: "staging", Revision: "r", Sequence: 1, Entities: 0, Pages: []string{digestOf([]byte(`{"entities":[]}`))}}, k.sign)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := f.bucket(ctx, bucketHead, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, headKey, env); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadInventory(ctx, []TrustedKey{k.sign.Public()}); !isReason(err, ReasonFleet) {
		t.Errorf("ReadInventory(head of fleet staging) = %v, want a fleet refusal", err)
	}
}
