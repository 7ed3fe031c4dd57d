package reconciler

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
	"certops/plan"
	"certops/source"
)

// TestGitLifecycle follows a repository served by `git http-backend`
// through commits, a bad commit, its fix, a rename, a force-push rollback,
// a mass delete and the deletion of the branch, checking what a real TLS
// client is served at each step.
func TestGitLifecycle(t *testing.T) {
	ca := fixtures.NewRootCA(t, "lifecycle CA")
	repo := fixtures.NewGitRepo(t)
	srv := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{})
	gw := startGateway(t, ca)

	shopYAML, shop1 := entity(t, ca, "shop", "shop.example.com")
	apiYAML, api1 := entity(t, ca, "api", "api.example.com")
	webYAML, _ := entity(t, ca, "web", "web.example.com")
	first := repo.Commit(t, "first", map[string]string{"shop.yaml": shopYAML, "api.yaml": apiYAML, "web.yaml": webYAML, "README.md": "certs\n"})

	origin, err := source.NewGit(source.GitOptions{URL: srv.URL + "/" + repo.Name, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	var logs fixtures.SyncBuffer
	rec := New(Options{Source: origin, Gateway: gw, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if rec.Ready() {
		t.Fatal("Ready before the first apply")
	}

	t.Run("first clone", func(t *testing.T) {
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultApplied)
		if att.Revision != first {
			t.Errorf("revision = %s, want %s", att.Revision, first)
		}
		if !rec.Ready() {
			t.Error("not Ready after the first apply")
		}
		gw.wantServed(t, "shop.example.com", shop1)
		gw.wantServed(t, "api.example.com", api1)
		st := rec.Status()
		if st.Applied == nil || st.Applied.ID != first || st.Entities != 3 {
			t.Errorf("status = %+v, want applied %s with 3 entities", st, first)
		}
		// Fixture certificates expire in a day: within the 720h window.
		if len(st.Expiring) != 3 || st.Expiring[0].NotAfter.IsZero() {
			t.Errorf("expiring = %+v, want the 3 certificates", st.Expiring)
		}
	})

	t.Run("no change is a no-op", func(t *testing.T) {
		wantResult(t, reconcileNow(t, rec), ResultUnchanged)
	})

	shopYAML2, shop2 := entity(t, ca, "shop", "shop.example.com")
	t.Run("new commit applied", func(t *testing.T) {
		rev := repo.Commit(t, "rotate shop", map[string]string{"shop.yaml": shopYAML2})
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultApplied)
		if att.Revision != rev {
			t.Errorf("revision = %s, want %s", att.Revision, rev)
		}
		gw.wantServed(t, "shop.example.com", shop2)
		if p := rec.Status().Plan; p == nil || p.Update != 1 || p.Unchanged != 2 {
			t.Errorf("plan summary = %+v, want 1 update, 2 unchanged", p)
		}
		if _, ok := rec.loader.last.files.Find("shop.yaml"); !ok {
			t.Error("shop.yaml not among the results kept for the next load")
		}
	})

	var good string
	t.Run("bad commit refused", func(t *testing.T) {
		good = repo.Head(t)
		expired := ca.Expired(t, "api.example.com")
		bad := fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{expired}})
		badRev := repo.Commit(t, "bad", map[string]string{
			"api.yaml":    bad,
			"broken.yaml": "name: broken\nsnis: [broken.example.com]\ncert: 42\n",
		})
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultStalled)
		if att.Revision != badRev {
			t.Errorf("revision = %s, want %s", att.Revision, badRev)
		}
		var files []string
		for _, p := range att.Errors {
			if p.Pos.File != "" && p.Pos.Line > 0 {
				files = append(files, p.Pos.File)
			}
		}
		if !strings.Contains(strings.Join(files, " "), "broken.yaml") {
			t.Errorf("errors do not name broken.yaml with a line:\n%s", problemsText(att.Errors))
		}
		st := rec.Status()
		if st.Applied.ID != good {
			t.Errorf("applied = %s, want the last good %s", st.Applied.ID, good)
		}
		if st.LastAttempt.Result != ResultStalled || len(st.LastAttempt.Errors) == 0 {
			t.Errorf("last attempt = %+v, want stalled with errors", st.LastAttempt)
		}
		gw.wantServed(t, "api.example.com", api1)
		gw.wantServed(t, "shop.example.com", shop2)
		if !strings.Contains(logs.String(), "level=WARN msg=\"revision refused\"") || !strings.Contains(logs.String(), "broken.yaml:") {
			t.Errorf("logs lack the refused revision's problems at Warn:\n%s", logs.String())
		}
		// Asking again does not re-validate a revision known to be bad.
		wantResult(t, reconcileNow(t, rec), ResultStalled)
	})

	apiYAML2, api2 := entity(t, ca, "api", "api.example.com")
	t.Run("fix applied", func(t *testing.T) {
		repo.Commit(t, "fix", map[string]string{"api.yaml": apiYAML2, "broken.yaml": ""})
		wantResult(t, reconcileNow(t, rec), ResultApplied)
		gw.wantServed(t, "api.example.com", api2)
		if errs := rec.Status().LastAttempt.Errors; len(errs) != 0 {
			t.Errorf("errors after the fix: %v", errs)
		}
	})

	t.Run("rename of an entity file", func(t *testing.T) {
		repo.Rename(t, "api.yaml", "teams/api.yaml")
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultApplied)
		gw.wantServed(t, "api.example.com", api2)
		infos := rec.Entities()
		var file string
		for _, e := range infos {
			if e.Name == "api" {
				file = e.File
			}
		}
		if file != "teams/api.yaml" {
			t.Errorf("api file = %q, want teams/api.yaml", file)
		}
	})

	t.Run("force-push rollback", func(t *testing.T) {
		repo.ForcePush(t, first)
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultApplied)
		if att.Revision != first {
			t.Errorf("revision = %s, want %s", att.Revision, first)
		}
		gw.wantServed(t, "shop.example.com", shop1)
		gw.wantServed(t, "api.example.com", api1)
	})

	t.Run("force-push to a commit a shallow clone never had", func(t *testing.T) {
		// A fresh shallow clone has only the tip; rolling back to its parent
		// needs objects the clone lacks (go-git issue 1443).
		older := repo.Commit(t, "older", map[string]string{"web.yaml": webYAML})
		yaml, leaf := entity(t, ca, "web", "web.example.com")
		repo.Commit(t, "newer", map[string]string{"web.yaml": yaml})
		origin, err := source.NewGit(source.GitOptions{URL: srv.URL + "/" + repo.Name, Dir: filepath.Join(t.TempDir(), "clone")})
		if err != nil {
			t.Fatal(err)
		}
		gw2 := startGateway(t, ca)
		rec2 := New(Options{Source: origin, Gateway: gw2})
		wantResult(t, reconcileNow(t, rec2), ResultApplied)
		gw2.wantServed(t, "web.example.com", leaf)
		repo.ForcePush(t, older)
		att := reconcileNow(t, rec2)
		wantResult(t, att, ResultApplied)
		if att.Revision != older {
			t.Errorf("revision = %s, want %s", att.Revision, older)
		}
		if _, err := gw2.served("web.example.com"); err != nil {
			t.Errorf("web.example.com after the rollback: %v", err)
		}
		if got, _ := gw2.served("web.example.com"); got != nil && got.SerialNumber.Cmp(leaf.Cert.SerialNumber) == 0 {
			t.Error("still serving the certificate of the rolled-back commit")
		}
	})

	t.Run("mass delete refused", func(t *testing.T) {
		before := rec.Status().Applied.ID
		repo.Commit(t, "oops", map[string]string{"shop.yaml": "", "api.yaml": "", "web.yaml": ""})
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultStalled)
		msg := problemsText(att.Errors)
		if !strings.Contains(msg, "--allow-mass-delete") || !strings.Contains(msg, "3 of 3") {
			t.Errorf("errors = %s, want the mass-delete refusal naming --allow-mass-delete", msg)
		}
		if rec.Status().Applied.ID != before {
			t.Errorf("applied revision changed on a refused mass delete")
		}
		if _, err := gw.served("web.example.com"); err != nil {
			t.Errorf("web.example.com no longer served: %v", err)
		}
	})

	t.Run("branch deleted upstream", func(t *testing.T) {
		before := rec.Status().Applied.ID
		repo.DeleteBranch(t, "main")
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultFailed)
		// With its only branch gone the repository is empty.
		if msg := problemsText(att.Errors); !strings.Contains(msg, "not found") && !strings.Contains(msg, "empty") {
			t.Errorf("errors = %v, want the ref not found", att.Errors)
		}
		if rec.Status().Applied.ID != before {
			t.Error("applied revision changed")
		}
		if _, err := gw.served("web.example.com"); err != nil {
			t.Errorf("web.example.com no longer served: %v", err)
		}
	})

	t.Run("status is JSON without keys", func(t *testing.T) {
		b, err := json.Marshal(struct {
			S *Status
			E []plan.EntityInfo
		}{rec.Status(), rec.Entities()})
		if err != nil {
			t.Fatal(err)
		}
		noPrivateKey(t, "status", string(b), shop1, shop2, api1, api2)
		noPrivateKey(t, "logs", logs.String(), shop1, shop2, api1, api2)
		var b2 fixtures.SyncBuffer
		slog.New(slog.NewJSONHandler(&b2, nil)).Info("options", "git", source.GitOptions{URL: "https://u:pw1@h/r.git", Password: "tok3n", SSHKey: []byte("-----BEGIN OPENSSH PRIVATE KEY-----")})
		if strings.Contains(b2.String(), "pw1") || strings.Contains(b2.String(), "tok3n") || strings.Contains(b2.String(), "PRIVATE") {
			t.Errorf("GitOptions logged with credentials: %s", b2.String())
		}
	})
}

// TestGitTransports clones and follows a repository over every transport.
func TestGitTransports(t *testing.T) {
	ca := fixtures.NewRootCA(t, "transport CA")
	repo := fixtures.NewGitRepo(t)
	yaml, leaf := entity(t, ca, "shop", "shop.example.com")
	repo.Commit(t, "first", map[string]string{"certs/shop.yaml": yaml})

	ssh := fixtures.ServeGitSSH(t, repo.Root)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(ssh.KnownHosts()), 0o600); err != nil {
		t.Fatal(err)
	}
	httpsSrv := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{TLS: true, Username: "bot", Password: "s3cr3t-token"})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: httpsSrv.Certificate().Raw})
	plain := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{})
	daemon := fixtures.ServeGitDaemon(t, repo.Root)

	tests := []struct {
		name string
		opts source.GitOptions
	}{
		{"file", source.GitOptions{URL: repo.FileURL()}},
		{"http-backend", source.GitOptions{URL: plain.URL + "/" + repo.Name}},
		{"https token and CA", source.GitOptions{URL: httpsSrv.URL + "/" + repo.Name, Username: "bot", Password: "s3cr3t-token", CABundle: caPEM}},
		{"git daemon", source.GitOptions{URL: daemon + repo.Name}},
		{"ssh", source.GitOptions{URL: ssh.URL(repo.Name), SSHKey: ssh.ClientKeyPEM, KnownHosts: []string{knownHosts}}},
		{"local working copy", source.GitOptions{URL: repo.Work}},
		{"local bare repository", source.GitOptions{URL: repo.Bare()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir = filepath.Join(t.TempDir(), "clone")
			origin, err := source.NewGit(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			gw := startGateway(t, ca)
			rec := New(Options{Source: origin, Gateway: gw, Path: "certs"})
			wantResult(t, reconcileNow(t, rec), ResultApplied)
			gw.wantServed(t, "shop.example.com", leaf)
			if strings.Contains(origin.String(), "s3cr3t") {
				t.Errorf("String() = %q reveals the token", origin.String())
			}
		})
	}

	t.Run("https with the token in the URL is redacted", func(t *testing.T) {
		u, _ := url.Parse(httpsSrv.URL + "/" + repo.Name)
		u.User = url.UserPassword("bot", "wrong-s3cr3t")
		origin, err := source.NewGit(source.GitOptions{URL: u.String(), CABundle: caPEM})
		if err != nil {
			t.Fatal(err)
		}
		var logs fixtures.SyncBuffer
		rec := New(Options{Source: origin, Gateway: startGateway(t, ca), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		att := reconcileNow(t, rec)
		wantResult(t, att, ResultFailed)
		b, _ := json.Marshal(rec.Status())
		text := problemsText(att.Errors) + origin.String() + logs.String() + string(b)
		t.Logf("refused: %s", text)
		if strings.Contains(text, "wrong-s3cr3t") {
			t.Errorf("credentials leak: %s", text)
		}
	})

	t.Run("ssh wrong key refused", func(t *testing.T) {
		other := fixtures.ServeGitSSH(t, repo.Root) // a server whose accepted key we do not present
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(other.KnownHosts()), 0o600)
		origin, err := source.NewGit(source.GitOptions{URL: other.URL(repo.Name), SSHKey: ssh.ClientKeyPEM, KnownHosts: []string{kh}})
		if err != nil {
			t.Fatal(err)
		}
		att := reconcileNow(t, New(Options{Source: origin, Gateway: startGateway(t, ca)}))
		wantResult(t, att, ResultFailed)
		if !strings.Contains(problemsText(att.Errors), "unable to authenticate") {
			t.Errorf("errors = %s, want an authentication failure", problemsText(att.Errors))
		}
	})

	t.Run("ssh unknown host key refused", func(t *testing.T) {
		other := fixtures.ServeGitSSH(t, repo.Root)
		kh := filepath.Join(t.TempDir(), "known_hosts")
		// The known_hosts file knows the address, with another server's key.
		line := strings.Replace(ssh.KnownHosts(), ssh.Addr[strings.LastIndex(ssh.Addr, ":")+1:], other.Addr[strings.LastIndex(other.Addr, ":")+1:], 1)
		os.WriteFile(kh, []byte(line), 0o600)
		origin, err := source.NewGit(source.GitOptions{URL: other.URL(repo.Name), SSHKey: other.ClientKeyPEM, KnownHosts: []string{kh}})
		if err != nil {
			t.Fatal(err)
		}
		att := reconcileNow(t, New(Options{Source: origin, Gateway: startGateway(t, ca)}))
		wantResult(t, att, ResultFailed)
		t.Logf("refused: %s", problemsText(att.Errors))
		if !strings.Contains(problemsText(att.Errors), "key") {
			t.Errorf("errors = %s, want a host key failure", problemsText(att.Errors))
		}
	})

	t.Run("ssh host missing from known_hosts refused", func(t *testing.T) {
		other := fixtures.ServeGitSSH(t, repo.Root)
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(ssh.KnownHosts()), 0o600) // lists another server only
		origin, err := source.NewGit(source.GitOptions{URL: other.URL(repo.Name), SSHKey: other.ClientKeyPEM, KnownHosts: []string{kh}})
		if err != nil {
			t.Fatal(err)
		}
		att := reconcileNow(t, New(Options{Source: origin, Gateway: startGateway(t, ca)}))
		wantResult(t, att, ResultFailed)
		if !strings.Contains(problemsText(att.Errors), "knownhosts: key is unknown") {
			t.Errorf("errors = %s, want an unknown host key", problemsText(att.Errors))
		}
	})

	t.Run("ssh without known_hosts refused", func(t *testing.T) {
		_, err := source.NewGit(source.GitOptions{URL: ssh.URL(repo.Name), SSHKey: ssh.ClientKeyPEM, KnownHosts: []string{filepath.Join(t.TempDir(), "missing")}})
		if err == nil || !strings.Contains(err.Error(), "unknown ssh hosts are refused") {
			t.Errorf("source.NewGit without known_hosts = %v, want a refusal", err)
		}
	})
}

// TestGitPinning follows a tag and a commit, and a --path subfolder.
func TestGitPinning(t *testing.T) {
	ca := fixtures.NewRootCA(t, "pinning CA")
	repo := fixtures.NewGitRepo(t)
	srv := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{})
	y1, l1 := entity(t, ca, "shop", "shop.example.com")
	other, _ := entity(t, ca, "other", "other.example.com")
	c1 := repo.Commit(t, "one", map[string]string{"prod/shop.yaml": y1, "staging/other.yaml": other})
	repo.Tag(t, "v1", c1)
	y2, l2 := entity(t, ca, "shop", "shop.example.com")
	repo.Commit(t, "two", map[string]string{"prod/shop.yaml": y2})

	tests := []struct {
		name, ref string
		want      *fixtures.Leaf
	}{
		{"branch", "main", l2},
		{"default branch", "", l2},
		{"tag", "v1", l1},
		{"commit", c1, l1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, err := source.NewGit(source.GitOptions{URL: srv.URL + "/" + repo.Name, Ref: tt.ref})
			if err != nil {
				t.Fatal(err)
			}
			gw := startGateway(t, ca)
			rec := New(Options{Source: origin, Gateway: gw, Path: "prod"})
			wantResult(t, reconcileNow(t, rec), ResultApplied)
			gw.wantServed(t, "shop.example.com", tt.want)
			gw.wantRefused(t, "other.example.com") // outside --path
		})
	}
}

// TestGitRestart restarts the daemon against an unreachable repository,
// with and without a data dir.
func TestGitRestart(t *testing.T) {
	ca := fixtures.NewRootCA(t, "restart CA")
	repo := fixtures.NewGitRepo(t)
	srv := fixtures.ServeGitHTTP(t, repo.Root, fixtures.GitHTTPOptions{})
	yaml, leaf := entity(t, ca, "shop", "shop.example.com")
	rev := repo.Commit(t, "one", map[string]string{"shop.yaml": yaml})
	url := srv.URL + "/" + repo.Name
	dataDir := t.TempDir()

	start := func(t *testing.T, dataDir string) (*Reconciler, *testGateway, func()) {
		t.Helper()
		opts := source.GitOptions{URL: url}
		if dataDir != "" {
			opts.Dir = filepath.Join(dataDir, "clone")
		}
		origin, err := source.NewGit(opts)
		if err != nil {
			t.Fatal(err)
		}
		gw := startGateway(t, ca)
		rec := New(Options{Source: origin, Gateway: gw, DataDir: dataDir})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		return rec, gw, func() { cancel(); <-done }
	}
	waitFor := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	rec, _, stop := start(t, dataDir)
	waitFor(t, "the first apply", rec.Ready)
	stop()
	st, err := loadState(dataDir)
	if err != nil || st == nil || st.Revision != rev {
		t.Fatalf("saved state = %+v, %v; want revision %s", st, err, rev)
	}

	srv.Close() // the Git server goes down

	t.Run("restore from the data dir", func(t *testing.T) {
		rec, gw, stop := start(t, dataDir)
		defer stop()
		waitFor(t, "the restore", rec.Ready)
		gw.wantServed(t, "shop.example.com", leaf)
		waitFor(t, "a failed fetch", func() bool {
			a := rec.Status().LastAttempt
			return a != nil && a.Result == ResultFailed
		})
		if a := rec.Status().Applied; a == nil || a.ID != rev {
			t.Errorf("applied = %+v, want %s", a, rev)
		}
	})

	t.Run("another source does not restore", func(t *testing.T) {
		url = strings.Replace(url, "repo.git", "other.git", 1)
		defer func() { url = strings.Replace(url, "other.git", "repo.git", 1) }()
		rec, _, stop := start(t, dataDir)
		defer stop()
		waitFor(t, "a failed fetch", func() bool {
			a := rec.Status().LastAttempt
			return a != nil && a.Result == ResultFailed
		})
		if rec.Ready() {
			t.Error("restored a revision recorded for another source")
		}
	})

	t.Run("unreachable without a data dir", func(t *testing.T) {
		rec, gw, stop := start(t, "")
		defer stop()
		waitFor(t, "a failed fetch", func() bool {
			a := rec.Status().LastAttempt
			return a != nil && a.Result == ResultFailed
		})
		if rec.Ready() {
			t.Error("Ready without anything applied")
		}
		gw.wantRefused(t, "shop.example.com")
	})
}
