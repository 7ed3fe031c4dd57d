package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"certops/fixtures"
)

// The wire format that TestFleetRefusals forges (fleet/manifest.go): the
// value of key "head" in bucket certops_<fleet>_head is an envelope of the
// signed root; pages and blobs are in certops_<fleet>_blobs under their
// SHA-256.
type (
	wireEnvelope struct {
		Root json.RawMessage `json:"root"`
		Key  string          `json:"key"`
		Sig  []byte          `json:"sig"`
	}
	wirePage struct {
		Entities []wireEntry `json:"entities"`
	}
	wireEntry struct {
		Name string `json:"name"`
		Blob string `json:"blob"`
	}
)

// bus is a test's own connection to a fleet's buckets, to tamper with.
type bus struct {
	head, blobs jetstream.KeyValue
	nc          *nats.Conn
}

func openBus(tb testing.TB, url, fleetName string) *bus {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &bus{nc: nc}
	if b.head, err = js.KeyValue(ctx, "certops_"+fleetName+"_head"); err != nil {
		tb.Fatal(err)
	}
	if b.blobs, err = js.KeyValue(ctx, "certops_"+fleetName+"_blobs"); err != nil {
		tb.Fatal(err)
	}
	return b
}

func (b *bus) getHead(tb testing.TB) []byte {
	tb.Helper()
	e, err := b.head.Get(context.Background(), "head")
	if err != nil {
		tb.Fatal(err)
	}
	return e.Value()
}

func (b *bus) putHead(tb testing.TB, env []byte) {
	tb.Helper()
	if _, err := b.head.Put(context.Background(), "head", env); err != nil {
		tb.Fatal(err)
	}
}

func (b *bus) putBlob(tb testing.TB, key string, v []byte) {
	tb.Helper()
	if _, err := b.blobs.Put(context.Background(), key, v); err != nil {
		tb.Fatal(err)
	}
}

// forge returns env with its root changed by edit and signed by priv.
func forge(tb testing.TB, env []byte, priv ed25519.PrivateKey, edit func(root map[string]any)) []byte {
	tb.Helper()
	var e wireEnvelope
	if err := json.Unmarshal(env, &e); err != nil {
		tb.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(e.Root, &root); err != nil {
		tb.Fatal(err)
	}
	edit(root)
	rb, err := json.Marshal(root)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	out, err := json.Marshal(wireEnvelope{Root: rb, Key: hex.EncodeToString(sum[:8]), Sig: ed25519.Sign(priv, rb)})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// loadEd25519 reads the PKCS #8 PEM that openssl genpkey wrote.
func loadEd25519(tb testing.TB, path string) ed25519.PrivateKey {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		tb.Fatalf("%s: no PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

func hexDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// refusals counts the node's log lines that refuse a fleet manifest for
// reason.
func refusals(d *daemon, reason string) int {
	n := 0
	for line := range strings.SplitSeq(d.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["reason"] == reason && strings.Contains(fmt.Sprint(m["msg"]), "refused") {
			n++
		}
	}
	return n
}

// refYAML is entity shop with leaf's chain and its key as a reference to
// the environment variable name: secret references travel unresolved, so
// the publisher needs no data key.
func refYAML(leaf *fixtures.Leaf, name string) map[string]string {
	return map[string]string{"shop.yaml": "name: shop\nsnis: [\"shop.example.com\"]\ncert: |\n" +
		"  " + strings.ReplaceAll(strings.TrimSpace(string(leaf.ChainPEM)), "\n", "\n  ") + "\nkey: $env://" + name + "\n"}
}

// TestFleetRefusals drives the four refusals of DESIGN.md 9 through the
// binary, on one Debian nats-server: a node refuses a manifest that no
// trusted key signed, a blob whose digest does not match, and an older
// manifest replayed (each written to the bus by this test, as an attacker
// with write access would); the publisher refuses a revision with a
// literal private key when it has no data key. Each is refused, logged
// with its reason, counted in the node's fleet record, applies nothing,
// and the last good revision is still served (TLS handshake); a good
// commit after all four is applied.
func TestFleetRefusals(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	fleetKeys(t, dir)
	ns := startNATS(t, dir, "nats", freePort(t), nil, 0)
	ca := fixtures.NewRootCA(t, "fleet refusals CA")
	leaf1, leaf2, leaf3, leaf4 := ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com")
	env := []string{"KEY1=" + string(leaf1.KeyPEM), "KEY2=" + string(leaf2.KeyPEM), "KEY4=" + string(leaf4.KeyPEM)}
	repo := fixtures.NewGitRepo(t)
	rev1 := repo.Commit(t, "shop", refYAML(leaf1, "KEY1"))

	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pub := startCertopsEnv(t, admin, env, "publish", "--source", repo.FileURL(), "--nats", ns.url(), "--fleet", "demo",
		"--signing-key", filepath.Join(dir, "signing.pem"), "--admin", admin, "--data-dir", filepath.Join(dir, "publisher"), "--interval", "500ms")
	node := runDaemon(t, daemonConfig{args: fleetArgs(dir, ns.url()+"/demo", "edge-1"), env: env})
	nodes := []*daemon{node}
	fleetWait(t, dir, ns.url(), "demo", rev1, 1)
	b := openBus(t, ns.url(), "demo")
	env1 := b.getHead(t)
	rev2 := repo.Commit(t, "rotate shop", refYAML(leaf2, "KEY2"))
	fleetWait(t, dir, ns.url(), "demo", rev2, 1)
	requireServes(t, "second revision", nodes, "shop.example.com", leaf2)
	env2 := b.getHead(t)
	signing := loadEd25519(t, filepath.Join(dir, "signing.pem"))

	// refused writes to the bus with tamper, waits until the node has
	// refused it for reason, and checks that nothing was applied and the
	// last good leaf is served.
	refused := func(t *testing.T, reason, inRecord string, tamper func()) {
		t.Helper()
		before := refusals(node, reason) // before tampering: a node may refuse at once, and log it once
		tamper()
		eventually(t, 30*time.Second, "the node logs a refusal for "+reason, func() (bool, string) {
			return refusals(node, reason) > before, tail(node.logs.String(), 3)
		})
		eventually(t, 30*time.Second, "the node's fleet record counts the refusal", func() (bool, string) {
			st := fleetStatus(t, dir, ns.url(), "demo")
			r, ok := st.record("edge-1")
			return ok && r.Result == "refused" && strings.Contains(strings.Join(r.Errors, "\n"), inRecord), fmt.Sprintf("%+v", r)
		})
		requireServes(t, "after a refusal ("+reason+")", nodes, "shop.example.com", leaf2)
		if st := nodeStatus(t, node); st.Fleet.PublisherRevision != rev2 || st.Fleet.Sequence != 2 {
			t.Errorf("node status fleet = %+v after a refusal (%s), want revision %s, manifest 2", st.Fleet, reason, rev2)
		}
	}

	t.Run("manifest signed by another key", func(t *testing.T) {
		_, other, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, "untrusted", "not trusted", func() {
			b.putHead(t, forge(t, env2, other, func(r map[string]any) { r["sequence"] = 3 }))
		})
	})
	t.Run("blob whose digest does not match", func(t *testing.T) {
		claimed := []byte(`{"entity":{"name":"shop","snis":["shop.example.com"]}}`)
		served := []byte(`{"entity":{"name":"shop","snis":["evil.example.com"]}}`)
		d := hexDigest(claimed)
		b.putBlob(t, d, served) // under the digest of other content
		pg, _ := json.Marshal(wirePage{Entities: []wireEntry{{Name: "shop", Blob: d}}})
		b.putBlob(t, hexDigest(pg), pg)
		// Signed with the fleet's own key and above the applied sequence:
		// only the digest is wrong.
		refused(t, "digest", "does not match its digest", func() {
			b.putHead(t, forge(t, env2, signing, func(r map[string]any) {
				r["sequence"], r["pages"], r["entities"] = 4, []string{hexDigest(pg)}, 1
			}))
		})
	})
	t.Run("older manifest replayed", func(t *testing.T) {
		refused(t, "replay", "not above the applied 2", func() { b.putHead(t, env1) })
	})
	t.Run("literal key without a data key at the publisher", func(t *testing.T) {
		before := fleetStatus(t, dir, ns.url(), "demo").Head
		rev3 := repo.Commit(t, "a literal key", shopYAML(leaf3))
		eventually(t, 30*time.Second, "the publisher refuses the revision, naming the data key", func() (bool, string) {
			for line := range strings.SplitSeq(pub.logs.String(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["revision"] == rev3 && (m["level"] == "ERROR" || m["level"] == "WARN") &&
					strings.Contains(line, "--data-key-file") {
					return true, ""
				}
			}
			return false, tail(pub.logs.String(), 3)
		})
		st, _ := pubStatus(pub)
		if st.publishedRevision() == rev3 {
			t.Errorf("publisher status says it published %s, a revision with a literal key and no data key", rev3)
		}
		if st.PublishError == "" && (st.LastAttempt == nil || st.LastAttempt.Result != "stalled") {
			t.Errorf("publisher status = %+v, want the refusal reported (stalled, or publish_error)", st)
		}
		if head := fleetStatus(t, dir, ns.url(), "demo").Head; head != before {
			t.Errorf("head moved from %+v to %+v on a revision the publisher must refuse", before, head)
		}
		requireServes(t, "after the publisher refused a literal key", nodes, "shop.example.com", leaf2)
		scanBus(t, ns.url(), fixtures.LeafScanner(leaf3))
	})

	// Nothing refused sticks: a good commit is published and applied,
	// although head was last set to a replayed older manifest.
	rev4 := repo.Commit(t, "rotate shop again", refYAML(leaf4, "KEY4"))
	fleetWait(t, dir, ns.url(), "demo", rev4, 1)
	requireServes(t, "a good commit after the refusals", nodes, "shop.example.com", leaf4)
	scanBus(t, ns.url(), fixtures.LeafScanner(leaf1, leaf2, leaf3, leaf4))
}
