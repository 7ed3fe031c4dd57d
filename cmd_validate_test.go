package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// validateRepo writes a repository with a good entity, an entity whose key
// does not match and one whose key was pasted into cert, and returns its
// folder and the key lines that must never be printed.
func validateRepo(t *testing.T) (string, []string) {
	t.Helper()
	ca := fixtures.NewRootCA(t, "validate test CA")
	// 90 days of validity: fixtures' default day would be a warning, and
	// so would a lifetime over the public maximum (lifetime_private).
	year := time.Now().AddDate(0, 0, 90)
	shop := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: year})
	api := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"api.example.com"}, NotAfter: year})
	swapped := *api
	swapped.ChainPEM = api.KeyPEM
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{shop}}),
		"bad/api.yaml":  fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{api.Mismatched(t)}}),
		"bad/swap.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "swap", SNIs: []string{"swap.example.com"}, Chains: []*fixtures.Leaf{&swapped}}),
		"notes.txt":     "not an entity",
		"ca.roots.pem":  string(ca.CertPEM), // pinned: the chains end at a trusted root
	})
	var keyLines []string
	for _, k := range [][]byte{api.KeyPEM, shop.KeyPEM} {
		for _, l := range strings.Split(string(k), "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") {
				keyLines = append(keyLines, l)
			}
		}
	}
	return dir, keyLines
}

func runValidate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(t.Context(), append([]string{"validate"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestValidateCommand(t *testing.T) {
	dir, keyLines := validateRepo(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []*regexp.Regexp
	}{
		{"example repository", []string{"examples/basic"}, 0, []*regexp.Regexp{regexp.MustCompile(`(?m)^valid: 4 entities in 4 files: 0 errors, 0 warnings$`)}},
		{"policy example", []string{"examples/policy"}, 0, []*regexp.Regexp{regexp.MustCompile(`(?m)^valid: 3 entities`)}},
		{"text", []string{dir}, 1, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(filepath.ToSlash(dir)) + `/bad/api\.yaml:\d+:\d+: key: error: the key does not match the certificate in cert`),
			regexp.MustCompile(`(?m)/bad/swap\.yaml:\d+:\d+: cert: error: PEM block 1 is a private key`),
			regexp.MustCompile(`(?m)^invalid: 3 entities in 3 files: 2 errors, 0 warnings$`),
		}},
		{"github", []string{dir, "--format", "github"}, 1, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^::error file=[^,]*/bad/api\.yaml,line=\d+,col=\d+::key: the key does not match`),
			regexp.MustCompile(`(?m)^::error file=[^,]*/bad/swap\.yaml,line=4,col=7::cert: PEM block 1 is a private key`),
		}},
		{"verbose lists ignored files", []string{dir, "-v"}, 1, []*regexp.Regexp{regexp.MustCompile(`(?m)^ignored: .*/notes\.txt$`)}},
		{"unknown format", []string{dir, "--format", "xml"}, 1, nil},
		{"not a folder", []string{filepath.Join(dir, "shop.yaml")}, 1, nil},
		{"missing folder", []string{filepath.Join(dir, "nope")}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runValidate(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("validate %v: exit %d, want %d; stdout:\n%s\nstderr:\n%s", tt.args, code, tt.wantCode, stdout, stderr)
			}
			for _, re := range tt.want {
				if !re.MatchString(stdout) {
					t.Errorf("validate %v: stdout does not match %s:\n%s", tt.args, re, stdout)
				}
			}
			if tt.want == nil && stderr == "" {
				t.Errorf("validate %v: no message on stderr", tt.args)
			}
			for _, l := range keyLines {
				if strings.Contains(stdout+stderr, l) {
					t.Fatalf("validate %v printed private-key material", tt.args)
				}
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	dir, keyLines := validateRepo(t)
	code, stdout, _ := runValidate(t, dir, "--format", "json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var report struct {
		Valid    bool
		Entities int
		Errors   int
		Problems []struct {
			Severity, File, Field, Message string
			Line, Column                   int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if report.Valid || report.Entities != 3 || report.Errors != 2 || len(report.Problems) != 2 {
		t.Errorf("report = %+v, want invalid, 3 entities, 2 errors", report)
	}
	for _, p := range report.Problems {
		if p.Severity != "error" || p.Line == 0 || p.Column == 0 || p.Field == "" || !strings.HasPrefix(p.File, filepath.ToSlash(dir)) {
			t.Errorf("problem %+v lacks a position, field or severity", p)
		}
	}
	for _, l := range keyLines {
		if strings.Contains(stdout, l) {
			t.Fatal("JSON report printed private-key material")
		}
	}
}

// TestValidateWarnings: an expiring certificate is a warning, which fails
// only with --strict; --warn-within moves the window.
func TestValidateWarnings(t *testing.T) {
	ca := fixtures.NewRootCA(t, "validate test CA")
	soon := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"soon.example.com"}, NotAfter: time.Now().Add(48 * time.Hour)})
	dir := fixtures.WriteFiles(t, map[string]string{
		"soon.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "soon", SNIs: []string{"soon.example.com"}, Chains: []*fixtures.Leaf{soon}}),
		"ca.roots.pem": string(ca.CertPEM),
	})
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{dir}, 0, "cert: warning: the certificate expires at"},
		{[]string{dir, "--strict"}, 1, "invalid: 1 entity in 1 file: 0 errors, 1 warning"},
		{[]string{dir, "--warn-within", "1h"}, 0, "valid: 1 entity in 1 file: 0 errors, 0 warnings"},
		{[]string{dir, "--format", "github"}, 0, "::warning file="},
	}
	for _, tt := range tests {
		code, stdout, stderr := runValidate(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(stdout, tt.want) {
			t.Errorf("validate %v: exit %d, stdout:\n%s\nstderr: %s\nwant exit %d and %q", tt.args, code, stdout, stderr, tt.wantCode, tt.want)
		}
	}
}

// TestValidateRelativePaths: with a folder below the working directory,
// paths are relative to it, as GitHub annotations need.
func TestValidateRelativePaths(t *testing.T) {
	dir, _ := validateRepo(t)
	t.Chdir(filepath.Dir(dir))
	code, stdout, _ := runValidate(t, filepath.Base(dir), "--format", "github")
	want := "::error file=" + filepath.Base(dir) + "/bad/swap.yaml,line=4,col=7::"
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("exit %d, stdout:\n%s\nwant exit 1 and %q", code, stdout, want)
	}
	t.Chdir(dir)
	_, stdout, _ = runValidate(t, "--format", "github")
	if !strings.Contains(stdout, "::error file=bad/swap.yaml,line=4,col=7::") {
		t.Errorf("validate in the repository: stdout:\n%s\nwant paths relative to it", stdout)
	}
}

// TestValidateOpenSSLCerts validates entities whose certificates openssl
// made, with the key identifiers it writes, one leaf shared by two
// entities: zlint finds nothing in such a leaf, and its empty result,
// read again from the cache for the second entity, panicked.
func TestValidateOpenSSLCerts(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skipf("openssl not installed: %v", err)
	}
	dir := t.TempDir()
	openssl := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
		"-out", "ca.roots.pem", "-days", "365", "-subj", "/CN=openssl test CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
		"-out", "leaf.csr", "-subj", "/CN=shop.example.com")
	if err := os.WriteFile(filepath.Join(dir, "leaf.ext"), []byte("subjectAltName=DNS:shop.example.com,DNS:api.example.com\n"+
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"+
		"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nbasicConstraints=critical,CA:FALSE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.roots.pem", "-CAkey", "ca.key", "-CAcreateserial",
		"-out", "leaf.crt", "-days", "90", "-extfile", "leaf.ext")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	leaf := &fixtures.Leaf{ChainPEM: read("leaf.crt"), KeyPEM: read("leaf.key")}
	repo := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}}),
		"api.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{leaf}}),
		"ca.roots.pem": string(read("ca.roots.pem")),
	})
	code, out, errOut := runValidate(t, repo)
	if code != 0 || !strings.Contains(out, "valid: 2 entities in 2 files") {
		t.Errorf("validate of openssl-made certificates: exit %d, want 0\n%s%s", code, out, errOut)
	}
}

// TestValidateEnvironment: validate reads the settings that decide its
// verdict from CERTOPS_<FLAG> as run does, a flag winning, and refuses
// wrong log flags though it does not log.
func TestValidateEnvironment(t *testing.T) {
	dir, _ := validateRepo(t)
	t.Setenv("CERTOPS_WARN_WITHIN", "bogus")
	if code, _, errOut := runValidate(t, dir); code != 1 || !strings.Contains(errOut, "CERTOPS_WARN_WITHIN") {
		t.Errorf("validate with CERTOPS_WARN_WITHIN=bogus: exit %d, stderr %q; want 1 and the variable named", code, errOut)
	}
	// 100 days: every leaf of the repository (90 days) expires within it.
	t.Setenv("CERTOPS_WARN_WITHIN", "2400h")
	if _, out, _ := runValidate(t, "--verbose", dir); !strings.Contains(out, "expires") {
		t.Errorf("validate with CERTOPS_WARN_WITHIN=2400h gave no expiry warning:\n%s", out)
	}
	if _, out, _ := runValidate(t, "--warn-within", "1h", dir); strings.Contains(out, "expires") {
		t.Errorf("--warn-within 1h did not win over CERTOPS_WARN_WITHIN:\n%s", out)
	}
	t.Setenv("CERTOPS_WARN_WITHIN", "")
	os.Unsetenv("CERTOPS_WARN_WITHIN")
	for _, args := range [][]string{{"--log-level", "loud", "validate", dir}, {"--log-format", "xml", "validate", dir}} {
		var stdout, stderr bytes.Buffer
		if code := execute(t.Context(), args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), args[0]) {
			t.Errorf("certops %q: exit %d, stderr %q; want 1 and %s named", args, code, stderr.String(), args[0])
		}
	}
}
