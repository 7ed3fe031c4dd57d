package secrets_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
	"certops/reconciler"
	"certops/secrets"
)

// TestOutageDegradedThroughReconciler is issue 17.1 end to end below the
// binary: with every entity's pair in Vault, a Vault that stops answering
// (refused, or hung) shows in the reconciler's status as every entity
// degraded within seconds, while the gateway keeps serving; each reason
// names the reference once.
func TestOutageDegradedThroughReconciler(t *testing.T) {
	const n = 50
	for _, mode := range []string{"refused", "hung"} {
		t.Run(mode, func(t *testing.T) {
			ca := fixtures.NewRootCA(t, "certops outage test CA")
			vault := secrets.NewTestVault(t)
			files := map[string]string{}
			for i := range n {
				name := fmt.Sprintf("e%02d", i)
				leaf := ca.Server(t, name+".example.com")
				vault.Put("secret/tls/"+name, map[string]any{"cert": string(leaf.ChainPEM), "key": string(leaf.KeyPEM)})
				files[name+".yaml"] = fmt.Sprintf("name: %s\nsnis: [%s.example.com]\ncert: $secret://vault/secret/tls/%s/cert\nkey: $secret://vault/secret/tls/%s/key\n", name, name, name, name)
			}
			dir := fixtures.WriteFiles(t, files)
			e := &env{vars: map[string]string{"VAULT_ADDR": vault.URL, "VAULT_TOKEN": "root-token"}}
			s := startStack(t, dir, secrets.Options{Refresh: time.Second, Getenv: e.get, HTTPClient: vault.Client})
			if att := s.reconcile(t); att.Result != reconciler.ResultApplied && att.Result != reconciler.ResultUnchanged {
				t.Fatalf("first reconcile: %s %v", att.Result, att.Err())
			}
			start := time.Now()
			if mode == "refused" {
				vault.Close()
			} else {
				vault.SetHang(true)
				defer vault.SetHang(false)
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(degraded(s.rec.Status())) < n {
				if time.Now().After(deadline) {
					t.Fatalf("after 30s %d of %d entities degraded", len(degraded(s.rec.Status())), n)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The refresh round starts up to 1s after the outage began.
			t.Logf("%s: %d entities degraded %v after the outage began", mode, n, time.Since(start).Round(10*time.Millisecond))
			for name, reason := range degraded(s.rec.Status()) {
				ref := "$secret://vault/secret/tls/" + name + "/"
				if strings.Count(reason, ref) != 1 {
					t.Errorf("degraded reason of %s = %q, want the reference named once", name, reason)
				}
			}
			if got := s.served(t, "e07.example.com", fixtures.Pool(ca)); got == nil {
				t.Error("the gateway stopped serving during the outage")
			}
		})
	}
}
