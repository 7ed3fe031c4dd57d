package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fleet is a repository of entities for the git scenarios: one entity,
// shop.test, that the scenarios rotate, and static ones beside it.
type fleet struct {
	ca     *testCA
	repo   *gitRepo
	static []*testLeaf
}

func newFleet(tb testing.TB, statics int) *fleet {
	tb.Helper()
	f := &fleet{ca: newCA(tb, "e2e fleet CA"), repo: newGitRepo(tb)}
	for i := range statics {
		name := fmt.Sprintf("static%d.test", i)
		leaf := f.ca.issue(tb, algECDSA, name, []string{name})
		f.static = append(f.static, leaf)
		writeFile(tb, f.repo.work, fmt.Sprintf("static/%d.yaml", i), entity{
			name: fmt.Sprintf("static-%d", i), snis: []string{name}, chains: []*testLeaf{leaf},
		}.yaml())
	}
	return f
}

// shop issues a fresh leaf for shop.test and writes it to shop.yaml.
func (f *fleet) shop(tb testing.TB) *testLeaf {
	tb.Helper()
	leaf := f.ca.issue(tb, algECDSA, "shop.test", []string{"shop.test"})
	writeFile(tb, f.repo.work, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{leaf}}.yaml())
	return leaf
}

// caFile writes the fleet's CA to a file for openssl and curl.
func (f *fleet) caFile(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	writeFile(tb, dir, "ca.pem", f.ca.certPEM)
	return filepath.Join(dir, "ca.pem")
}

// TestFollowGit runs `certops run --source` against a bare repository
// served by git daemon and by git http-backend, and follows it through the
// life of a repository: initial serve, rotation by commit (a new serial on
// the next handshake while an open keep-alive connection keeps working),
// an invalid commit refused with the old certificate still served, the fix
// applied, a force-push rollback, a mass delete refused, and a restart
// while the git server is down that serves from the data dir.
func TestFollowGit(t *testing.T) {
	for _, server := range []string{"git-daemon", "http-backend"} {
		t.Run(server, func(t *testing.T) {
			requireBinary(t)
			f := newFleet(t, 3)
			leafA := f.shop(t)
			revA := f.repo.commit(t, "shop: first certificate")
			url, stopGit := "", func() {}
			switch server {
			case "git-daemon":
				url, stopGit = gitDaemon(t, f.repo.root, f.repo.name)
			case "http-backend":
				u, srv := gitHTTP(t, f.repo.root, f.repo.name)
				url, stopGit = u, srv.Close
			}
			args := []string{"--source", url, "--data-dir", t.TempDir(), "--interval", "500ms"}
			d := startDaemon(t, args...)
			roots := pool(f.ca)

			// Initial serve, checked with openssl.
			d.waitRevisionLogged(revA)
			h := sClient(t, d.listen, "-servername", "shop.test", "-CAfile", f.caFile(t))
			if !h.ok || h.leaf.SerialNumber.Cmp(leafA.cert.SerialNumber) != 0 || h.verify != "0 (ok)" {
				t.Fatalf("initial serve: s_client %s, want serial %x verified", h.describe(), leafA.cert.SerialNumber)
			}
			for i, s := range f.static {
				waitServed(t, d.listen, fmt.Sprintf("static%d.test", i), roots, s)
			}

			// Rotation by commit.
			ka := openKeepAlive(t, d.listen, "shop.test", roots)
			if _, err := ka.get(); err != nil {
				t.Fatalf("keep-alive request before rotation: %v", err)
			}
			leafB := f.shop(t)
			revB := f.repo.commit(t, "shop: rotate")
			waitServed(t, d.listen, "shop.test", roots, leafB)
			ci, err := ka.get()
			if err != nil {
				t.Fatalf("keep-alive connection opened before the rotation broke: %v", err)
			}
			if ci.Entity != "shop" || ka.leaf().SerialNumber.Cmp(leafA.cert.SerialNumber) != 0 {
				t.Errorf("keep-alive connection after rotation: entity %q, serial %x; want shop on its original serial %x", ci.Entity, ka.leaf().SerialNumber, leafA.cert.SerialNumber)
			}

			// An invalid commit: shop.yaml's key does not match its cert.
			leafC := f.ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})
			bad := *leafC
			bad.keyPEM = leafB.keyPEM
			writeFile(t, f.repo.work, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&bad}}.yaml())
			revC := f.repo.commit(t, "shop: broken key")
			if l := d.waitRevisionLogged(revC); l["level"] != "WARN" {
				t.Errorf("invalid revision logged as %v, want a WARN line (input rejected, last good state serving): %v", l["level"], l)
			}
			if c, err := servedLeaf(d.listen, "shop.test", roots); err != nil || c.SerialNumber.Cmp(leafB.cert.SerialNumber) != 0 {
				t.Errorf("after the invalid commit: served %v (err %v), want the last good serial %x", serialOf(c), err, leafB.cert.SerialNumber)
			}

			// The fix is applied.
			leafD := f.shop(t)
			f.repo.commit(t, "shop: fixed")
			waitServed(t, d.listen, "shop.test", roots, leafD)

			// Force-push rollback to revB.
			f.repo.forcePush(t, revB)
			waitServed(t, d.listen, "shop.test", roots, leafB)

			// Mass delete: every entity file removed.
			removeFile(t, f.repo.work, "shop.yaml")
			for i := range f.static {
				removeFile(t, f.repo.work, fmt.Sprintf("static/%d.yaml", i))
			}
			writeFile(t, f.repo.work, "README.md", []byte("emptied by mistake\n"))
			revE := f.repo.commit(t, "delete everything")
			if l := d.waitRevisionLogged(revE); l["level"] != "WARN" {
				t.Errorf("mass delete logged as %v, want a WARN line (refused, last good state serving): %v", l["level"], l)
			}
			if c, err := servedLeaf(d.listen, "shop.test", roots); err != nil || c.SerialNumber.Cmp(leafB.cert.SerialNumber) != 0 {
				t.Errorf("after the refused mass delete: served %v (err %v), want serial %x", serialOf(c), err, leafB.cert.SerialNumber)
			}

			// Restart while the git server is down: served from the data dir.
			d.stop()
			stopGit()
			d2 := startDaemon(t, args...)
			d2.waitRevisionLogged(revB) // restored from the data dir
			waitServed(t, d2.listen, "shop.test", roots, leafB)
			for i, s := range f.static {
				waitServed(t, d2.listen, fmt.Sprintf("static%d.test", i), roots, s)
			}
		})
	}
}

// TestScaleOut runs two daemons against the same repository with their
// own data dirs, as two gateway nodes would (DESIGN.md 6): after each push
// both converge on the same revision and serve the same certificate,
// without talking to each other.
func TestScaleOut(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 2)
	f.shop(t)
	f.repo.commit(t, "first")
	url, _ := gitDaemon(t, f.repo.root, f.repo.name)
	nodes := []*daemon{
		startDaemon(t, "--source", url, "--data-dir", t.TempDir(), "--interval", "300ms"),
		startDaemon(t, "--source", url, "--data-dir", t.TempDir(), "--interval", "300ms"),
	}
	roots := pool(f.ca)
	for round := range 3 {
		leaf := f.shop(t)
		rev := f.repo.commit(t, fmt.Sprintf("rotate %d", round))
		for _, d := range nodes {
			waitServed(t, d.listen, "shop.test", roots, leaf)
			waitApplied(t, d, rev)
		}
	}
}

// waitApplied polls /api/v1/status until rev is the applied revision.
func waitApplied(tb testing.TB, d *daemon, rev string) {
	tb.Helper()
	eventually(tb, 60*time.Second, "revision "+rev+" applied", func() (bool, string) {
		st, raw := d.status()
		return st.Applied != nil && st.Applied.Revision == rev, string(raw)
	})
}

// waitAttempt polls /api/v1/status until the last attempt is rev and
// returns that status.
func waitAttempt(tb testing.TB, d *daemon, rev string) statusDoc {
	tb.Helper()
	var st statusDoc
	eventually(tb, 60*time.Second, "an attempt at revision "+rev, func() (bool, string) {
		var raw []byte
		st, raw = d.status()
		return st.LastAttempt != nil && st.LastAttempt.Revision == rev, string(raw)
	})
	return st
}

// hasProblemAt reports whether problems hold an error in file with a line.
func hasProblemAt(problems []problemDoc, file string) bool {
	for _, p := range problems {
		if strings.HasSuffix(p.File, file) && p.Line > 0 {
			return true
		}
	}
	return false
}
