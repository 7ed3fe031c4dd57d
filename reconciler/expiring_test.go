package reconciler

import (
	"reflect"
	"testing"
	"time"

	"certops/plan"
)

// TestExpiringReusesTheLastList: the status's expiring list is the last
// one (the same array) when nothing changed, and a fresh list otherwise;
// the last one is never modified.
func TestExpiringReusesTheLastList(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	info := func(name string, notAfter time.Time) plan.EntityInfo {
		return plan.EntityInfo{Name: name, Chains: []plan.ChainInfo{{Subject: "CN=" + name, NotAfter: notAfter}}}
	}
	soon, late := now.Add(time.Hour), now.Add(100*24*time.Hour)
	base := plan.NewSet([]plan.EntityInfo{info("a", soon), info("b", soon), info("c", late)})
	limit := now.Add(30 * 24 * time.Hour)
	first := expiring(base, limit, nil)
	want := []ExpiringCert{{Entity: "a", Subject: "CN=a", NotAfter: soon}, {Entity: "b", Subject: "CN=b", NotAfter: soon}}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("expiring = %+v, want %+v", first, want)
	}
	kept := append([]ExpiringCert(nil), first...)
	tests := []struct {
		name  string
		set   *plan.Set
		want  []ExpiringCert
		reuse bool
	}{
		{"unchanged", base, want, true},
		{"an expiring one deleted, last", base.With(nil, []string{"b"}), want[:1], true},
		{"an expiring one deleted, first", base.With(nil, []string{"a"}), want[1:], false},
		{"one more expiring", base.With([]plan.EntityInfo{info("c", soon)}, nil),
			append(want[:2:2], ExpiringCert{Entity: "c", Subject: "CN=c", NotAfter: soon}), false},
		{"none expiring", base.With([]plan.EntityInfo{info("a", late), info("b", late)}, nil), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := expiring(tt.set, limit, first)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("expiring = %+v, want %+v", got, tt.want)
			}
			if reused := len(got) > 0 && &got[0] == &first[0]; reused != tt.reuse {
				t.Errorf("expiring reused the last list: %v, want %v", reused, tt.reuse)
			}
			if !reflect.DeepEqual(first, kept) {
				t.Errorf("the last list was modified: %+v, want %+v", first, kept)
			}
		})
	}
}
