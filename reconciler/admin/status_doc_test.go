package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"certops/plan"
)

// TestSSLDocDisabled shows an APISIX status: 0 entity as disabled in the
// admin API, with its desc, and reads both back for `diff --live` (issue 18
// items 3 and 9).
func TestSSLDocDisabled(t *testing.T) {
	info := plan.EntityInfo{Name: "shop-old", Type: "server", Desc: "the old shop", Disabled: true}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"disabled":true`, `"desc":"the old shop"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SSL document %s lacks %s", b, want)
		}
	}
	if back := wireTrip(t, []plan.EntityInfo{info})[0]; !back.Disabled || back.Desc != info.Desc {
		t.Errorf("decoded = %+v, want disabled with desc %q", back, info.Desc)
	}
	if b, _ := json.Marshal(plan.EntityInfo{Name: "shop"}); strings.Contains(string(b), "disabled") {
		t.Errorf("an enabled entity's document mentions disabled: %s", b)
	}
}

// TestSSLDocEmpty: the SSL document of an entity with nothing but a name
// has every documented key, with [] and {} for what it lacks, never null.
func TestSSLDocEmpty(t *testing.T) {
	b, err := json.Marshal(plan.EntityInfo{Name: "bare", Chains: []plan.ChainInfo{{CertRef: "$env://CERT"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"bare","type":"","snis":[],"labels":{},"file":"","ssl_protocols":[],"chains":[{"subject":"","sans":[],` +
		`"serial":"","not_before":"0001-01-01T00:00:00Z","not_after":"0001-01-01T00:00:00Z","key_type":"",` +
		`"fingerprint_sha256":"","public_key_sha256":"","cert_ref":"$env://CERT","issuer":""}],"client_ca":[]}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("json.Marshal(bare entity) (-want +got):\n%s", diff)
	}
}
