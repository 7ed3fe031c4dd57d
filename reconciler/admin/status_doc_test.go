package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"certops/plan"
)

// TestSSLDocDisabled shows an APISIX status: 0 entity as disabled in the
// admin API, with its desc, and reads both back for `diff --live` (issue 18
// items 3 and 9).
func TestSSLDocDisabled(t *testing.T) {
	info := plan.EntityInfo{Name: "shop-old", Type: "server", Desc: "the old shop", Disabled: true}
	doc := SSLDocOf(info)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"disabled":true`, `"desc":"the old shop"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SSLDoc JSON %s lacks %s", b, want)
		}
	}
	if back := doc.EntityInfo(); !back.Disabled || back.Desc != info.Desc {
		t.Errorf("EntityInfo() = %+v, want disabled with desc %q", back, info.Desc)
	}
	if b, _ := json.Marshal(SSLDocOf(plan.EntityInfo{Name: "shop"})); strings.Contains(string(b), "disabled") {
		t.Errorf("an enabled entity's document mentions disabled: %s", b)
	}
}
