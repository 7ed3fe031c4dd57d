package reconciler

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/source"
	"certops/trust"
)

func loadKeys(tb testing.TB, signers ...fixtures.CommitSigner) *trust.Keyring {
	tb.Helper()
	k, err := trust.LoadDir(fixtures.TrustedKeysDir(tb, signers...))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestSignedTagReSigned follows a tag with ModeTag: an unsigned tag is
// stalled, and the same commit tagged again with a signature is applied
// without a new commit.
func TestSignedTagReSigned(t *testing.T) {
	ca := fixtures.NewRootCA(t, "signatures CA")
	repo := fixtures.NewGitRepo(t)
	alice := fixtures.NewGPGKey(t, "alice")
	gw := startGateway(t, ca)
	shopYAML, shop := entity(t, ca, "shop", "shop.example.com")
	rev := repo.Commit(t, "first", map[string]string{"shop.yaml": shopYAML})
	repo.Tag(t, "release", rev)

	origin, err := source.NewGit(source.GitOptions{URL: repo.FileURL(), Ref: "release", Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	rec := New(Options{Source: origin, Gateway: gw, Signatures: Signatures{Mode: trust.ModeTag, Keys: loadKeys(t, alice)}})
	att := reconcileNow(t, rec)
	wantResult(t, att, ResultStalled)
	if len(att.Errors) != 1 || !strings.Contains(att.Errors[0].Msg, "tag") || !strings.Contains(att.Errors[0].Msg, "unsigned") {
		t.Fatalf("unsigned tag: errors %v, want one naming the tag as unsigned", att.Errors)
	}
	wantResult(t, reconcileNow(t, rec), ResultStalled) // unchanged: still refused
	gw.wantRefused(t, "shop.example.com")

	repo.TagSigned(t, alice, "release", rev)
	att = reconcileNow(t, rec)
	wantResult(t, att, ResultApplied)
	if att.Revision != rev {
		t.Errorf("revision = %s, want %s", att.Revision, rev)
	}
	gw.wantServed(t, "shop.example.com", shop)
}

// TestRestoreOnlyVerified: a revision in the data dir whose signer is no
// longer trusted is not restored at start; one still trusted is.
func TestRestoreOnlyVerified(t *testing.T) {
	ca := fixtures.NewRootCA(t, "signatures CA")
	repo := fixtures.NewGitRepo(t)
	ci := fixtures.NewSSHSigningKey(t, "ci")
	shopYAML, shop := entity(t, ca, "shop", "shop.example.com")
	rev := repo.CommitSigned(t, ci, "first", map[string]string{"shop.yaml": shopYAML})
	srv := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{})
	dataDir := t.TempDir()
	newRec := func(keys *trust.Keyring, gw *testGateway, logs *fixtures.SyncBuffer) *Reconciler {
		origin, err := source.NewGit(source.GitOptions{URL: srv.URL + "/" + repo.Name, Dir: filepath.Join(dataDir, "clone")})
		if err != nil {
			t.Fatal(err)
		}
		return New(Options{Source: origin, Gateway: gw, DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Signatures: Signatures{Mode: trust.ModeHead, Keys: keys}})
	}
	var logs fixtures.SyncBuffer
	wantResult(t, reconcileNow(t, newRec(loadKeys(t, ci), startGateway(t, ca), &logs)), ResultApplied)
	srv.Close() // Git is down from now on: only the restore can serve

	for _, tt := range []struct {
		name      string
		keys      *trust.Keyring
		wantReady bool
	}{
		{"key removed", loadKeys(t, fixtures.NewSSHSigningKey(t, "other")), false},
		{"key still trusted", loadKeys(t, ci), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs fixtures.SyncBuffer
			gw := startGateway(t, ca)
			rec := newRec(tt.keys, gw, &logs)
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			wg.Go(func() { rec.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			// The restore is the first attempt; the fetch after it fails.
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), rev) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if rec.Ready() != tt.wantReady {
				t.Fatalf("Ready() = %v after restoring %s, want %v; logs:\n%s", rec.Ready(), rev, tt.wantReady, logs.String())
			}
			if tt.wantReady {
				gw.wantServed(t, "shop.example.com", shop)
				return
			}
			gw.wantRefused(t, "shop.example.com")
			if !strings.Contains(logs.String(), "unknown key") || !strings.Contains(logs.String(), ci.Fingerprint) {
				t.Errorf("refused restore: logs lack the reason and the fingerprint %s:\n%s", ci.Fingerprint, logs.String())
			}
		})
	}
}

func TestSignaturesNeedSignedTrees(t *testing.T) {
	ca := fixtures.NewRootCA(t, "signatures CA")
	shopYAML, _ := entity(t, ca, "shop", "shop.example.com")
	dir := fixtures.WriteFiles(t, map[string]string{"shop.yaml": shopYAML})
	origin, err := source.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := New(Options{Source: origin, Gateway: startGateway(t, ca), Signatures: Signatures{Mode: trust.ModeHead, Keys: &trust.Keyring{}}})
	att := reconcileNow(t, rec)
	wantResult(t, att, ResultStalled)
	if !strings.Contains(att.Err().Error(), "no signatures") {
		t.Errorf("a folder source under ModeHead: %v, want a refusal saying it has no signatures", att.Err())
	}
}
