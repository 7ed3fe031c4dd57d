package fleet

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"certops/fixtures"
)

// keyMarkers are byte strings that betray a private key: its PKCS #8 DER,
// that DER in base64, and each full 64-character line of its PEM body.
func keyMarkers(tb testing.TB, leaf *fixtures.Leaf) [][]byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(leaf.Key)
	if err != nil {
		tb.Fatal(err)
	}
	out := [][]byte{der, []byte(base64.StdEncoding.EncodeToString(der))}
	for line := range strings.SplitSeq(string(pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: der})), "\n") {
		if len(line) == 64 {
			out = append(out, []byte(line))
		}
	}
	return out
}

// scanStreams returns every message (data and headers) of every stream of
// the account, named by stream and sequence.
func scanStreams(tb testing.TB, ctx context.Context, js jetstream.JetStream) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			tb.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				tb.Fatal(err)
			}
			var hdr bytes.Buffer
			for k, vs := range m.Header {
				hdr.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
			}
			out[name+"/"+m.Subject] = append(append(out[name+"/"+m.Subject], hdr.Bytes()...), m.Data...)
		}
	}
	if err := names.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestNoKeyOnTheBus publishes literal keys and ticket keys, runs a node
// with a data dir, then scans every message of every bucket, and every
// file of the data dir, for private-key material.
func TestNoKeyOnTheBus(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		ca := fixtures.NewRootCA(t, "leak CA")
		var ents []Entity
		var markers [][]byte
		for _, name := range []string{"ecdsa", "rsa", "ed25519"} {
			leaf := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{name + ".test"}, Key: fixtures.KeyType(name)})
			ents = append(ents, Entity{Doc: Document{Name: name, SNIs: []string{name + ".test"}, Cert: string(leaf.ChainPEM), Key: string(leaf.KeyPEM)}})
			markers = append(markers, keyMarkers(t, leaf)...)
		}
		// A second chain with a literal key, in keys[0].
		extra := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"ecdsa.test"}, Key: fixtures.RSA})
		ents[0].Doc.Certs, ents[0].Doc.Keys = []string{string(extra.ChainPEM)}, []string{string(extra.KeyPEM)}
		markers = append(markers, keyMarkers(t, extra)...)

		f := openFleet(t, ns, "prod", Options{})
		p := publisher(t, f, k, true)
		if _, err := p.Publish(ctx, "rev1", ents); err != nil {
			t.Fatal(err)
		}
		if _, err := f.RotateTicketKeys(ctx, k.dk, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		tk, err := f.TicketKeys(ctx, k.dk)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range tk.Keys {
			markers = append(markers, append([]byte(nil), key[:]...), []byte(base64.StdEncoding.EncodeToString(key[:])))
		}
		markers = append(markers, k.raw, []byte(base64.StdEncoding.EncodeToString(k.raw)))
		dir := t.TempDir()
		n := node(t, openFleet(t, ns, "prod", Options{}), k, dir)
		rev, err := n.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Applied(rev); err != nil {
			t.Fatal(err)
		}
		if e, _ := rev.Entity("rsa"); !strings.Contains(e.Doc.Key, "PRIVATE KEY") {
			t.Fatal("the node did not open the key: the scan would prove nothing")
		}
		if err := f.WriteRecord(ctx, Record{Node: "n1", Revision: "rev1", Sequence: 1}); err != nil {
			t.Fatal(err)
		}

		js, _ := jetstream.New(f.conn.nc)
		outputs := scanStreams(t, ctx, js)
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				outputs["data dir "+p] = b
			}
			return nil
		})
		if len(outputs) < 10 {
			t.Fatalf("scanned %d outputs: the scan would prove little", len(outputs))
		}
		for name, out := range outputs {
			if bytes.Contains(out, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a PEM private key", name)
			}
			for _, m := range markers {
				if bytes.Contains(out, m) {
					t.Errorf("%s holds private-key material", name)
					break
				}
			}
		}
	})
}

// TestKeyMarkersDetect proves the markers find a key in PEM and in DER.
func TestKeyMarkersDetect(t *testing.T) {
	ca := fixtures.NewRootCA(t, "leak CA")
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA, fixtures.Ed25519} {
		leaf := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.test"}, Key: kt})
		block, _ := pem.Decode(leaf.KeyPEM)
		for name, out := range map[string][]byte{"pem": leaf.KeyPEM, "der": block.Bytes, "json": []byte(strings.ReplaceAll(string(leaf.KeyPEM), "\n", `\n`))} {
			found := false
			for _, m := range keyMarkers(t, leaf) {
				found = found || bytes.Contains(out, m)
			}
			if !found {
				t.Errorf("%s key as %s: no marker found", kt, name)
			}
		}
	}
}
