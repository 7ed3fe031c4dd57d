package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/internal/daemontest"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/source"
)

// TestStatus runs `certops status` against the admin API of a real
// reconciler: once healthy, then after an invalid revision.
func TestStatus(t *testing.T) {
	ca := fixtures.NewRootCA(t, "status test CA")
	shop := ca.Server(t, "shop.test")
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test"}, Chains: []*fixtures.Leaf{shop}}),
	})
	origin, err := source.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{Source: origin})
	rec, api := d.Reconciler, d.API
	keys := [][]byte{shop.KeyPEM}

	code, out, stderr := runCLI(t, keys, "status", "--admin", api.URL)
	if code != 0 || !strings.Contains(out, field("Ready", "no")) {
		t.Errorf("status before any reconcile: exit %d\n%s%s", code, out, stderr)
	}

	if att, err := rec.ReconcileNow(t.Context()); err != nil || att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile: %+v, %v", att, err)
	}
	code, out, stderr = runCLI(t, keys, "status", "--admin", strings.TrimPrefix(api.URL, "http://"))
	for _, want := range []string{field("Ready", "yes"), field("Entities", "1"), field("Last attempt", "applied"), field("Expiring", "1 within the warning window"),
		"shop chain 0 (CN=shop.test): not after"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status after apply: exit %d, lacks %q\n%s%s", code, want, out, stderr)
		}
	}

	fixtures.WriteFilesTo(t, dir, map[string]string{"bad.yaml": "name: bad\nsnis: [bad.test]\ncert: nope\nkey: nope\n"})
	if att, _ := rec.ReconcileNow(t.Context()); att == nil || att.Result != reconciler.ResultStalled {
		t.Fatalf("reconcile of an invalid folder: %+v, want stalled", att)
	}
	code, out, stderr = runCLI(t, keys, "status", "--admin", api.URL)
	for _, want := range []string{field("Last attempt", "stalled"), "Problems of the last attempt:", "bad.yaml:3:7: cert:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status after a stalled attempt: exit %d, lacks %q\n%s%s", code, want, out, stderr)
		}
	}

	code, out, _ = runCLI(t, keys, "status", "--admin", api.URL, "--format", "json")
	var st admin.StatusDoc
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --format json: exit %d, %v\n%s", code, err, out)
	}
	if st.LastAttempt == nil || st.LastAttempt.Result != "stalled" || len(st.LastAttempt.Errors) == 0 || st.Entities != 1 {
		t.Errorf("status --format json = %s", out)
	}

	t.Setenv("CERTOPS_ADMIN", api.URL)
	if code, out, _ := runCLI(t, keys, "status"); code != 0 || !strings.Contains(out, field("Entities", "1")) {
		t.Errorf("status with CERTOPS_ADMIN: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"status", "--admin", "http://127.0.0.1:1"},
		{"status", "--admin", api.URL, "--format", "yaml"},
		{"status", "--admin", "ftp://x"},
	} {
		if code, _, stderr := runCLI(t, keys, args...); code != 1 || stderr == "" {
			t.Errorf("certops %v: exit %d, stderr %q; want 1 with a message", args, code, stderr)
		}
	}
}

// field is a line of the status summary: the label in its column, then
// the value.
func field(label, value string) string {
	return fmt.Sprintf("%-15s%s", label+":", value)
}
