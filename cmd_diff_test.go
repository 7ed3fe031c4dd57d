package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"certops/fixtures"
	"certops/internal/daemontest"
	"certops/plan"
	"certops/reconciler"
	"certops/reconciler/admin"
)

// diffRepo is a real Git repository with two commits whose difference
// covers every kind of change: create, rotate, key-only change, SNI
// change, delete and label change.
type diffRepo struct {
	repo          *fixtures.GitRepo
	base, head    string
	keys          [][]byte
	oldShop, shop *fixtures.Leaf
	vaultedKey    []byte // the value of $env://NEW_KEY
}

func newDiffRepo(t *testing.T) *diffRepo {
	t.Helper()
	ca := fixtures.NewRootCA(t, "diff test CA")
	oldShop := ca.Server(t, "shop.test")
	shop := ca.Server(t, "shop.test")
	api := ca.Server(t, "api.test", "api2.test")
	vaulted := ca.Server(t, "vault.test")
	gone := ca.Server(t, "gone.test")
	labelled := ca.Server(t, "labels.test")
	fresh := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"new.test"}, Key: fixtures.RSA})
	refEntity := func(keyRef string) string {
		full := fixtures.EntityYAML(fixtures.Entity{Name: "vaulted", SNIs: []string{"vault.test"}, Chains: []*fixtures.Leaf{vaulted}})
		head, _, _ := strings.Cut(full, "key: |")
		return head + "key: " + keyRef + "\n"
	}
	r := fixtures.NewGitRepo(t)
	d := &diffRepo{repo: r, oldShop: oldShop, shop: shop,
		vaultedKey: vaulted.KeyPEM,
		keys:       [][]byte{oldShop.KeyPEM, shop.KeyPEM, api.KeyPEM, vaulted.KeyPEM, gone.KeyPEM, labelled.KeyPEM, fresh.KeyPEM}}
	d.base = r.Commit(t, "base", map[string]string{
		"certs/shop.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test"}, Chains: []*fixtures.Leaf{oldShop}}),
		"certs/api.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.test"}, Chains: []*fixtures.Leaf{api}}),
		"certs/vaulted.yaml": refEntity("$env://OLD_KEY"),
		"certs/gone.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "gone", SNIs: []string{"gone.test"}, Chains: []*fixtures.Leaf{gone}}),
		"certs/labels.yaml":  fixtures.EntityYAML(fixtures.Entity{Name: "labelled", SNIs: []string{"labels.test"}, Chains: []*fixtures.Leaf{labelled}, Labels: map[string]string{"team": "web", "tier": "1"}}),
		"README.md":          "not an entity\n",
	})
	d.head = r.Commit(t, "head", map[string]string{
		"certs/shop.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test"}, Chains: []*fixtures.Leaf{shop}}),
		"certs/api.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.test", "api2.test"}, Chains: []*fixtures.Leaf{api}}),
		"certs/vaulted.yaml": refEntity("$env://NEW_KEY"),
		"certs/gone.yaml":    "",
		"certs/labels.yaml":  fixtures.EntityYAML(fixtures.Entity{Name: "labelled", SNIs: []string{"labels.test"}, Chains: []*fixtures.Leaf{labelled}, Labels: map[string]string{"team": "payments", "tier": "1"}}),
		"certs/new.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "new", SNIs: []string{"new.test"}, Chains: []*fixtures.Leaf{fresh}}),
	})
	return d
}

// runCLI runs certops with args and returns its exit code, stdout and
// stderr, after scanning both for the given private keys.
func runCLI(t *testing.T, keys [][]byte, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(t.Context(), args, &stdout, &stderr)
	noPrivateKeys(t, "certops "+strings.Join(args, " "), stdout.Bytes(), keys)
	noPrivateKeys(t, "certops "+strings.Join(args, " ")+" (stderr)", stderr.Bytes(), keys)
	return code, stdout.String(), stderr.String()
}

// noPrivateKeys fails when out holds a PEM private key block or material
// of one of keys (fixtures' leak scanner).
func noPrivateKeys(tb testing.TB, what string, out []byte, keys [][]byte) {
	tb.Helper()
	fixtures.PEMScanner(tb, keys...).Check(tb, what+": output", string(out))
}

func TestDiffBetweenCommits(t *testing.T) {
	d := newDiffRepo(t)
	args := []string{"diff", "--repo", d.repo.Work, "--base", d.base, "--head", d.head, "--path", "certs"}
	oldSerial, newSerial := d.oldShop.Cert.SerialNumber.Text(16), d.shop.Cert.SerialNumber.Text(16)

	t.Run("text", func(t *testing.T) {
		code, out, stderr := runCLI(t, d.keys, append(args, "--exit-code")...)
		if code != 2 {
			t.Fatalf("exit %d, want 2 (changes); stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"~ update api (certs/api.yaml)", "snis: + api2.test",
			"- delete gone (certs/gone.yaml)",
			"~ update labelled", "labels: + team=payments, - team=web",
			"+ create new (certs/new.yaml)",
			"~ update shop", "serial " + oldSerial, "serial " + newSerial,
			"~ update vaulted", "key: public key sha256 ", "($env://OLD_KEY) → public key sha256 ", "($env://NEW_KEY)",
			"Summary: 1 to create, 4 to update, 1 to delete, 0 unchanged.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("text plan lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("text plan to a non-terminal is coloured:\n%q", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, stderr := runCLI(t, d.keys, append(args, "--format", "json")...)
		if code != 0 {
			t.Fatalf("exit %d, want 0 without --exit-code; stderr:\n%s", code, stderr)
		}
		var p plan.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("--format json is not a plan: %v\n%s", err, out)
		}
		type row struct {
			Action plan.Action
			Name   string
			Fields []string
		}
		var got []row
		for _, c := range p.Changes {
			r := row{Action: c.Action, Name: c.Name}
			for _, f := range c.Fields {
				r.Fields = append(r.Fields, f.Field)
			}
			got = append(got, r)
		}
		want := []row{
			{plan.ActionUpdate, "api", []string{"snis"}},
			{plan.ActionDelete, "gone", nil},
			{plan.ActionUpdate, "labelled", []string{"labels"}},
			{plan.ActionCreate, "new", []string{"snis", "cert"}},
			{plan.ActionUpdate, "shop", []string{"cert", "key"}},
			{plan.ActionUpdate, "vaulted", []string{"key"}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("plan (-want +got):\n%s", diff)
		}
		if p.Summary != (plan.Summary{Create: 1, Update: 4, Delete: 1}) {
			t.Errorf("summary = %+v", p.Summary)
		}
	})

	t.Run("markdown", func(t *testing.T) {
		code, out, stderr := runCLI(t, d.keys, append(args, "--format", "markdown", "--exit-code")...)
		if code != 2 {
			t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"### certops plan: `" + d.base + "` → `" + d.head + "`",
			"**Summary:** 1 to create, 4 to update, 1 to delete, 0 unchanged.",
			"| | Entity | File | Changed fields |",
			"| `+` create | `new` | `certs/new.yaml` | snis, cert |",
			"| `-` delete | `gone` | `certs/gone.yaml` | (all) |",
			"<details><summary><code>~ update shop</code> (certs/shop.yaml)</summary>",
			"serial " + newSerial,
			"| labels | − team=web | + team=payments |",
			"</details>",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("markdown plan lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("no changes", func(t *testing.T) {
		code, out, _ := runCLI(t, d.keys, "diff", "--repo", d.repo.Work, "--base", d.head, "--head", d.head, "--path", "certs", "--exit-code")
		if code != 0 || !strings.Contains(out, "Summary: 0 to create, 0 to update, 0 to delete, 5 unchanged.") {
			t.Errorf("diff of a revision with itself: exit %d\n%s\nwant 0 and no changes", code, out)
		}
	})

	t.Run("repo below the root", func(t *testing.T) {
		// --repo naming the entities' folder reads the same trees as
		// --repo root --path certs.
		code, out, stderr := runCLI(t, d.keys, "diff", "--repo", filepath.Join(d.repo.Work, "certs"), "--base", d.base, "--head", d.head, "--exit-code")
		if code != 2 || !strings.Contains(out, "Summary: 1 to create, 4 to update, 1 to delete, 0 unchanged.") || !strings.Contains(out, "(certs/new.yaml)") {
			t.Errorf("diff --repo <root>/certs: exit %d\n%s%s", code, out, stderr)
		}
	})

	t.Run("working tree is the default head", func(t *testing.T) {
		fixtures.WriteFilesTo(t, d.repo.Work, map[string]string{"certs/new.yaml": ""})
		defer gitRestore(t, d.repo.Work, "certs/new.yaml")
		code, out, stderr := runCLI(t, d.keys, "diff", "--repo", d.repo.Work, "--base", "HEAD", "--path", "certs", "--exit-code")
		if code != 2 || !strings.Contains(out, "- delete new") || !strings.Contains(out, "Summary: 0 to create, 0 to update, 1 to delete, 4 unchanged.") {
			t.Errorf("diff --base HEAD with an uncommitted deletion: exit %d\n%s%s", code, out, stderr)
		}
	})
}

// gitRestore puts path back as it is in HEAD.
func gitRestore(t *testing.T, dir, path string) {
	t.Helper()
	if out, err := exec.Command("git", "-C", dir, "checkout", "--", path).CombinedOutput(); err != nil {
		t.Fatalf("git checkout %s: %v\n%s", path, err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// envResolver resolves secret references from a map, standing in for the
// environment of the daemon.
type envResolver map[string][]byte

func (r envResolver) Resolve(_ context.Context, ref string) ([]byte, error) {
	name := strings.TrimPrefix(ref, "$env://")
	if v, ok := r[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s is not set", ref)
}

func TestDiffErrors(t *testing.T) {
	d := newDiffRepo(t)
	bad := d.repo.Commit(t, "broken", map[string]string{"certs/broken.yaml": "name: broken\nsnis: [broken.test]\ncert: not a certificate\nkey: not a key\n"})
	tests := []struct {
		name       string
		args       []string
		wantStderr string
		wantStdout string
	}{
		{"invalid head", []string{"--base", d.head, "--head", bad}, "certs/broken.yaml:", ""},
		{"invalid head markdown", []string{"--base", d.head, "--head", bad, "--format", "markdown"}, "does not validate", "### certops plan: invalid revision"},
		{"invalid head json", []string{"--base", d.head, "--head", bad, "--format", "json"}, "does not validate", `"errors": [`},
		{"invalid base", []string{"--base", bad, "--head", d.head}, bad + " does not validate", ""},
		{"unknown revision", []string{"--base", "no-such-branch"}, "no-such-branch", ""},
		{"not a repository", []string{"--base", "HEAD", "--repo", t.TempDir()}, "not inside a Git working tree", ""},
		{"neither base nor live", nil, "give either --base", ""},
		{"both base and live", []string{"--base", "HEAD", "--live", "http://127.0.0.1:1"}, "give either --base", ""},
		{"bad format", []string{"--base", "HEAD", "--format", "yaml"}, "--format", ""},
		{"folder without live", []string{"--base", "HEAD", "somewhere"}, "--live", ""},
		{"daemon unreachable", []string{"--live", "http://127.0.0.1:1"}, "admin API", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"diff", "--repo", d.repo.Work, "--path", "certs", "--exit-code"}, tt.args...)
			if tt.name == "daemon unreachable" {
				args = []string{"diff", "--live", "http://127.0.0.1:1", t.TempDir()}
			}
			code, out, stderr := runCLI(t, d.keys, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if !strings.Contains(out, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, out)
			}
		})
	}
}

// TestDiffLive compares a folder with a daemon that serves it (no drift),
// then with a changed folder (drift), through the admin API.
func TestDiffLive(t *testing.T) {
	d := newDiffRepo(t)
	dir := filepath.Join(d.repo.Work, "certs")
	daemon := daemontest.Start(t, daemontest.Options{FS: os.DirFS(d.repo.Work), Path: "certs",
		Secrets: envResolver{"NEW_KEY": d.vaultedKey}})
	rec, api := daemon.Reconciler, daemon.API
	if att, err := rec.ReconcileNow(t.Context()); err != nil || att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile: %+v, %v", att, err)
	}
	// The daemon resolved $env://NEW_KEY; its API shows the reference and
	// the public-key fingerprint, never the value.
	for _, path := range []string{"/api/v1/ssls", "/api/v1/ssls/vaulted", "/api/v1/status", "/metrics"} {
		resp, err := api.Client().Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		noPrivateKeys(t, "GET "+path, body, d.keys)
		if path == "/api/v1/ssls/vaulted" && !bytes.Contains(body, []byte(`"key_ref": "$env://NEW_KEY"`)) {
			t.Errorf("GET %s lacks the key reference:\n%s", path, body)
		}
	}

	code, out, stderr := runCLI(t, d.keys, "diff", "--live", api.URL, dir, "--exit-code")
	if code != 0 || !strings.Contains(out, "Summary: 0 to create, 0 to update, 0 to delete, 5 unchanged.") {
		t.Errorf("diff --live of the served folder: exit %d, want 0 and no drift\n%s%s", code, out, stderr)
	}

	fixtures.WriteFilesTo(t, dir, map[string]string{"new.yaml": "", "extra.yaml": strings.ReplaceAll(readFile(t, filepath.Join(dir, "shop.yaml")), "name: shop", "name: extra")})
	// extra.yaml reuses shop's SNI, which validation refuses: drift of an
	// invalid folder is an error.
	code, _, stderr = runCLI(t, d.keys, "diff", "--live", api.URL, dir, "--exit-code")
	if code != 1 || !strings.Contains(stderr, "does not validate") {
		t.Errorf("diff --live of an invalid folder: exit %d, want 1\n%s", code, stderr)
	}
	fixtures.WriteFilesTo(t, dir, map[string]string{"extra.yaml": ""})
	code, out, stderr = runCLI(t, d.keys, "diff", "--live", api.URL, dir, "--exit-code", "--format", "markdown")
	if code != 2 || !strings.Contains(out, "| `-` delete | `new` |") {
		t.Errorf("diff --live after deleting new.yaml: exit %d, want 2 and a delete\n%s%s", code, out, stderr)
	}
}

// TestGitHubActionsWorkflow runs the certops commands of the example
// workflow (examples/github-actions) as the workflow does, in a real
// repository where origin/main is the base branch and the working tree is
// the pull request: once with a valid change, once with a broken file.
func TestGitHubActionsWorkflow(t *testing.T) {
	raw, err := os.ReadFile("examples/github-actions/.github/workflows/certops.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Env  map[string]string
		Jobs map[string]struct {
			Steps []struct {
				Name string
				Run  string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("workflow is not YAML: %v", err)
	}
	var commands [][]string // certops command lines, as argv
	for _, job := range wf.Jobs {
		for _, step := range job.Steps {
			for line := range strings.Lines(step.Run) {
				line = strings.TrimSpace(line)
				if !strings.HasPrefix(line, "certops ") {
					continue
				}
				line, _, _ = strings.Cut(line, ">") // the redirection to plan.md
				line = strings.NewReplacer("$CERTOPS_PATH", wf.Env["CERTOPS_PATH"], "$GITHUB_BASE_REF", "main").Replace(line)
				commands = append(commands, shellWords(t, line)[1:])
			}
		}
	}
	if len(commands) != 2 || commands[0][0] != "validate" || commands[1][0] != "diff" {
		t.Fatalf("workflow runs %q, want certops validate then certops diff", commands)
	}

	ca := fixtures.NewRootCA(t, "workflow test CA")
	shop, api := ca.Server(t, "shop.test"), ca.Server(t, "api.test")
	r := fixtures.NewGitRepo(t)
	r.Commit(t, "main", map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test"}, Chains: []*fixtures.Leaf{shop}}),
	})
	// The pull request: a new entity, not pushed (origin/main is the base).
	fixtures.WriteFilesTo(t, r.Work, map[string]string{
		"api.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.test"}, Chains: []*fixtures.Leaf{api}}),
	})
	gitIn(t, r.Work, "add", "--all")
	gitIn(t, r.Work, "commit", "--quiet", "-m", "add api")
	t.Chdir(r.Work)
	keys := [][]byte{shop.KeyPEM, api.KeyPEM}

	code, out, stderr := runCLI(t, keys, commands[0]...)
	if code != 0 {
		t.Errorf("certops %q: exit %d\n%s%s", commands[0], code, out, stderr)
	}
	code, out, stderr = runCLI(t, keys, commands[1]...)
	if code != 2 || !strings.Contains(out, "| `+` create | `api` | `api.yaml` |") || !strings.Contains(out, "**Summary:** 1 to create, 0 to update, 0 to delete, 1 unchanged.") {
		t.Errorf("certops %q: exit %d, want 2 and the plan\n%s%s", commands[1], code, out, stderr)
	}

	fixtures.WriteFilesTo(t, r.Work, map[string]string{"broken.yaml": "name: broken\nsnis: [broken.test]\ncert: nope\nkey: nope\n"})
	code, out, _ = runCLI(t, keys, commands[0]...)
	if code != 1 || !strings.Contains(out, "::error file=broken.yaml,line=3") {
		t.Errorf("certops %q with a broken file: exit %d, want 1 and an annotation\n%s", commands[0], code, out)
	}
	code, out, _ = runCLI(t, keys, commands[1]...)
	if code != 1 || !strings.Contains(out, "### certops plan: invalid revision") || !strings.Contains(out, "broken.yaml:3:7: cert:") {
		t.Errorf("certops %q with a broken file: exit %d, want 1 and the errors as Markdown\n%s", commands[1], code, out)
	}
}

// TestGenericWebhookRecipe runs the curl recipe of the example README
// against a daemon's webhook endpoint.
func TestGenericWebhookRecipe(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	readme, err := os.ReadFile("examples/github-actions/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(readme), "### Anything else")
	_, script, _ := strings.Cut(rest, "```sh\n")
	script, _, _ = strings.Cut(script, "```")

	rec := &countingTrigger{}
	srv := admin.New(admin.Options{Reconciler: rec, WebhookSecret: []byte("0123abcd"), Ref: "main"})
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	os.WriteFile(secretFile, []byte("0123abcd\n"), 0o600)
	script = strings.NewReplacer("/etc/certops/webhook-secret", secretFile, "http://127.0.0.1:9180", api.URL).Replace(script)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README recipe failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"triggered"`) || rec.n.Load() != 1 {
		t.Errorf("README recipe answered %s and triggered %d reconciles, want triggered once", out, rec.n.Load())
	}
}

// countingTrigger is a daemon that only counts triggers.
type countingTrigger struct {
	admin.Reconciler // nil: only Trigger is called by webhooks
	n                atomic.Int64
}

func (c *countingTrigger) Trigger() { c.n.Add(1) }

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// shellWords splits a command line as the shell does for words and double
// quotes, which is all the workflow uses.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
