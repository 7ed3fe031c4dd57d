package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// packCases are descriptions with every field set, unset, nil and empty.
func packCases() map[string]EntityInfo {
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	na := time.Date(2026, 4, 2, 3, 4, 5, 600, time.UTC)
	fp := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	return map[string]EntityInfo{
		"empty": {},
		"full": {
			Name: "shop", Type: "server", SNIs: []string{"shop.example.com", "*.shop.example.com"},
			Labels: map[string]string{"team": "web", "env": "prod"}, File: "tls/shop.yaml",
			Protocols: []string{"TLSv1.3"}, Desc: "the shop", Disabled: true,
			Chains: []ChainInfo{
				{Subject: "CN=shop", SANs: []string{"shop.example.com", "10.0.0.1"}, Serial: "1f", NotBefore: nb, NotAfter: na,
					KeyType: "ECDSA P-256", Fingerprint: fp, PublicKeyFingerprint: fp, Issuer: "CN=CA", Trust: "private"},
				{CertRef: "$secret://vault/shop#cert", KeyRef: "$env://KEY"},
			},
			ClientCA: []ChainInfo{{Subject: "CN=CA", NotAfter: na, Fingerprint: "00", PublicKeyFingerprint: fp[:63] + "G"}},
		},
		"empty lists and map": {Name: "x", SNIs: []string{}, Labels: map[string]string{}, Protocols: []string{},
			Chains: []ChainInfo{{SANs: []string{}}}, ClientCA: []ChainInfo{}},
		"uppercase hex kept as written": {Name: "y", Chains: []ChainInfo{{Fingerprint: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}}},
		"SANs are the SNIs, odd serial": {Name: "w", Type: "client", SNIs: []string{"a.example", "b.example"},
			Chains: []ChainInfo{{SANs: []string{"a.example", "b.example"}, Serial: "abc", KeyType: "RSA 2048"}, {SANs: []string{"a.example"}, Serial: "0"}}},
		"before 1970": {Name: "z", Chains: []ChainInfo{{NotBefore: time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC)}}},
	}
}

func TestPackRoundTrip(t *testing.T) {
	for name, info := range packCases() {
		t.Run(name, func(t *testing.T) {
			p := Pack(&info)
			if got := p.Unpack(); !reflect.DeepEqual(got, info) {
				t.Errorf("Pack(%+v).Unpack() = %+v", info, got)
			}
			if got := p.Name(); got != info.Name {
				t.Errorf("Pack(%+v).Name() = %q, want %q", info, got, info.Name)
			}
			want, _ := json.Marshal(info)
			got, _ := json.Marshal(p.Unpack())
			if string(got) != string(want) {
				t.Errorf("JSON of the unpacked description = %s, want %s", got, want)
			}
		})
	}
}

func TestSetWith(t *testing.T) {
	info := func(name string, notAfter time.Time) EntityInfo {
		return EntityInfo{Name: name, Chains: []ChainInfo{{Subject: "CN=" + name, NotAfter: notAfter}}}
	}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	base := NewSet([]EntityInfo{info("c", day), info("a", day), info("e", day)})
	tests := []struct {
		name    string
		fresh   []EntityInfo
		deleted []string
		want    []string
	}{
		{"nothing", nil, nil, []string{"a", "c", "e"}},
		{"insert first, middle, last", []EntityInfo{info("f", day), info("0", day), info("b", day)}, nil, []string{"0", "a", "b", "c", "e", "f"}},
		{"replace", []EntityInfo{info("c", day.Add(time.Hour))}, nil, []string{"a", "c", "e"}},
		{"delete", nil, []string{"a", "e", "missing"}, []string{"c"}},
		{"insert before a replaced one and delete it", []EntityInfo{info("b", day), info("c", day)}, []string{"a"}, []string{"b", "c", "e"}},
		{"delete all", nil, []string{"a", "c", "e"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base.With(tt.fresh, tt.deleted)
			got := []string{}
			for i := range s.Len() {
				got = append(got, s.Name(i))
				if s.soonest[i] != soonestOf(new(s.At(i))) {
					t.Errorf("With: %s soonest = %d, want %d", s.Name(i), s.soonest[i], soonestOf(new(s.At(i))))
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("With(%v, %v) = %v, want %v", tt.fresh, tt.deleted, got, tt.want)
			}
			for _, f := range tt.fresh {
				if g, ok := s.Lookup(f.Name); !ok || !reflect.DeepEqual(g, f) {
					t.Errorf("With: Lookup(%q) = %+v, %v; want %+v", f.Name, g, ok, f)
				}
			}
		})
	}
	if got := base.Len(); got != 3 {
		t.Errorf("base.Len() after With = %d, want 3 (a Set is immutable)", got)
	}
}

func TestSetExpiring(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 500, time.UTC)
	s := NewSet([]EntityInfo{
		{Name: "b", Chains: []ChainInfo{{Subject: "CN=b0", NotAfter: now.Add(48 * time.Hour)}, {Subject: "CN=b1", NotAfter: now.Add(time.Hour)}}},
		{Name: "a", Chains: []ChainInfo{{Subject: "CN=a0", NotAfter: now}}}, // same second as the limit, before it
		{Name: "c", Chains: []ChainInfo{{CertRef: "$env://C"}}},             // no expiry known
		{Name: "d", Chains: []ChainInfo{{Subject: "CN=d0", NotAfter: now.Add(time.Nanosecond)}}},
		{Name: "e", ClientCA: []ChainInfo{{Subject: "CN=ca", NotAfter: now.Add(-time.Hour)}}}, // a client CA is not listed
	})
	type exp struct {
		name    string
		chain   int
		subject string
	}
	var got []exp
	s.Expiring(now.Add(time.Nanosecond), func(name string, chain int, subject string, notAfter time.Time) {
		got = append(got, exp{name, chain, subject})
	})
	want := []exp{{"a", 0, "CN=a0"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Expiring(now+1ns) = %v, want %v", got, want)
	}
	got = nil
	s.Expiring(now.Add(2*time.Hour), func(name string, chain int, subject string, notAfter time.Time) {
		got = append(got, exp{name, chain, subject})
	})
	want = []exp{{"a", 0, "CN=a0"}, {"b", 1, "CN=b1"}, {"d", 0, "CN=d0"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Expiring(now+2h) = %v, want %v", got, want)
	}
	if i, _ := s.Find("c"); s.soonest[i] != math.MaxInt64 {
		t.Errorf("soonest of an entity without expiry = %d, want MaxInt64", s.soonest[i])
	}
	var empty *Set
	if empty.Len() != 0 || len(empty.Infos()) != 0 || empty.Infos() == nil {
		t.Errorf("nil Set: Len %d, Infos %v; want 0 and []", empty.Len(), empty.Infos())
	}
}

// TestPackInternedFull packs more distinct issuers than the interned
// table holds: the ones past it are packed as written.
func TestPackInternedFull(t *testing.T) {
	var packed []Packed
	var infos []EntityInfo
	for i := range maxInterned + 100 {
		info := EntityInfo{Name: "e", Chains: []ChainInfo{{Issuer: fmt.Sprintf("CN=self-signed %d", i)}}}
		infos = append(infos, info)
		packed = append(packed, Pack(&info))
	}
	if n := len(*interned.list.Load()); n > maxInterned {
		t.Errorf("interned table holds %d strings, want at most %d", n, maxInterned)
	}
	for i, p := range packed {
		if got := p.Unpack(); !reflect.DeepEqual(got, infos[i]) {
			t.Fatalf("Unpack() = %+v, want %+v", got, infos[i])
		}
	}
}

// TestSetRecordsInBlocks: NewSet packs its records, in name order, each
// equal to its own Pack, into blocks of packChunk bytes at most, each
// block filled but for less than a record.
func TestSetRecordsInBlocks(t *testing.T) {
	full := packCases()["full"]
	for _, n := range []int{1, 6, 3000} {
		infos := make([]EntityInfo, n)
		for i := range infos {
			infos[i] = full
			infos[i].Name = fmt.Sprintf("e%05d", i)
		}
		s := NewSet(infos)
		total, longest := 0, 0
		blocks := 1
		for i := range s.Len() {
			e := s.At(i)
			if got, want := s.recs[i], Pack(&e); got != want {
				t.Fatalf("%d records: record %d (%s) = %q, want %q", n, i, e.Name, got, want)
			}
			total, longest = total+len(s.recs[i]), max(longest, len(s.recs[i]))
			if i == 0 {
				continue
			}
			prev := s.recs[i-1]
			end := unsafe.Add(unsafe.Pointer(unsafe.StringData(string(prev))), len(prev))
			if unsafe.Pointer(unsafe.StringData(string(s.recs[i]))) != end {
				blocks++ // record i begins a block
			}
		}
		if most := total/(packChunk-longest) + 2; blocks > most {
			t.Errorf("%d records of %d bytes in %d blocks, want at most %d", n, total, blocks, most)
		}
	}
}
