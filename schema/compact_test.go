package schema

import (
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// TestEntityCompact: compact changes no value of an entity and leaves its
// strings in one allocation, its SNIs and protocols in one slice.
func TestEntityCompact(t *testing.T) {
	fresh := func() *Entity {
		return &Entity{
			Name:      string([]byte("shop")),
			Desc:      string([]byte("the shop")),
			SNIs:      []string{string([]byte("shop.example.com")), string([]byte("*.shop.example.com"))},
			Protocols: []string{string([]byte("TLSv1.3"))},
			ClientCA:  string([]byte("$secret://aws/prod/client-ca")),
			place:     &placement{fields: fieldIndex{s: string([]byte("name\x00\x01\x00\x00\x00\x07\x00\x00\x00"))}},
		}
	}
	e, want := fresh(), fresh()
	e.compact()
	if e.place != nil {
		t.Errorf("compact kept a placement of a field index only out of line: %+v", *e.place)
	}
	if e.Name != want.Name || e.Desc != want.Desc || e.ClientCA != want.ClientCA || e.fieldIndex() != want.place.fields ||
		!slices.Equal(e.SNIs, want.SNIs) || !slices.Equal(e.Protocols, want.Protocols) {
		t.Fatalf("compact changed the entity: %+v, want %+v", e, want)
	}
	if cap(e.SNIs) != len(e.SNIs) {
		t.Errorf("cap(SNIs) = %d, want %d: an append must not write over the protocols", cap(e.SNIs), len(e.SNIs))
	}
	if unsafe.Add(unsafe.Pointer(&e.SNIs[0]), len(e.SNIs)*int(unsafe.Sizeof(""))) != unsafe.Pointer(&e.Protocols[0]) {
		t.Error("SNIs and Protocols are not one slice")
	}
	// Each string follows the one before it in one allocation.
	strs := append(slices.Clone(e.SNIs), e.Protocols...)
	strs = append(strs, e.Name, e.Desc, e.ClientCA, e.fieldIndex().s)
	for i := 1; i < len(strs); i++ {
		end := unsafe.Add(unsafe.Pointer(unsafe.StringData(strs[i-1])), len(strs[i-1]))
		if unsafe.Pointer(unsafe.StringData(strs[i])) != end {
			t.Errorf("%q does not follow %q in one allocation", strs[i], strs[i-1])
		}
	}
	entities := make([]*Entity, 11) // AllocsPerRun runs once more than asked
	for i := range entities {
		entities[i] = fresh()
	}
	if n := testing.AllocsPerRun(10, func() { entities[0].compact(); entities = entities[1:] }); n != 2 {
		t.Errorf("compact allocates %v times, want 2 (the strings, the list)", n)
	}

	one := make([]*Entity, 11)
	for i := range one {
		one[i] = &Entity{Name: string([]byte("api")), SNIs: []string{string([]byte("api.example.com"))}, place: &placement{}}
	}
	if n := testing.AllocsPerRun(10, func() { one[0].compact(); one = one[1:] }); n != 1 {
		t.Errorf("compact of an entity with one SNI allocates %v times, want 1 (the strings)", n)
	}

	// An entity whose SNIs were renumbered (one was refused) keeps its
	// placement, and its field index moves into the block all the same.
	moved := &Entity{Name: string([]byte("api")), SNIs: []string{string([]byte("api.example.com"))},
		place: &placement{fields: fieldIndex{s: string([]byte("snis\x00\x02\x00\x00\x00\x01\x00\x00\x00"))}, sniSrc: []int{1}}}
	fields := moved.place.fields
	moved.compact()
	if moved.place == nil || moved.fieldIndex() != fields || moved.sniIndex(0) != 1 {
		t.Errorf("compact of an entity with a refused SNI: placement %v, field index %q, sniIndex(0) %d; want it kept, %q, 1",
			moved.place, moved.fieldIndex().s, moved.sniIndex(0), fields.s)
	} else if unsafe.Pointer(unsafe.StringData(moved.place.fields.s)) != unsafe.Add(unsafe.Pointer(unsafe.StringData(moved.Name)), len(moved.Name)) {
		t.Error("the kept placement's field index is not in the entity's block")
	}

	bare := &Entity{Name: "api"}
	bare.compact()
	if bare.Name != "api" || bare.SNIs != nil || bare.Protocols != nil || bare.Desc != "" {
		t.Errorf("compact of an entity with a name only = %+v", bare)
	}
}

// TestProblemsInterned: the same warning of two files is one string, and a
// file's problems keep their values and order.
func TestProblemsInterned(t *testing.T) {
	v, errs := NewValidator(nil, Options{Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	file := func(name string) *FileResult {
		src := fmt.Sprintf("name: %s\nsnis: [%s.example.com]\ncert: $secret://vault/kv/tls/%s/cert\nkey: $env://KEY\n"+
			"client:\n  ca: $secret://aws/prod/client-ca\n  depth: 99\n---\nname: %s-b\nsnis: [b.%s.example.com]\n"+
			"cert: $env://CERT\nkey: $env://KEY\nclient:\n  ca: $env://CA\n  depth: 98\n", name, name, name, name, name)
		fr := v.File(name+".yaml", []byte(src))
		if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 2 || len(fr.Problems) != 2 {
			t.Fatalf("File(%s): %d entities, problems %v", name, len(fr.Entities), fr.Problems)
		}
		return fr
	}
	a, b := file("shop"), file("api")
	for i := range 2 {
		pa, pb := a.Problems[i], b.Problems[i]
		if pa.Msg != pb.Msg || pa.Field != "client.depth" || pa.Severity != SeverityWarning || pa.Line != 7+8*i {
			t.Fatalf("problem %d: %v and %v, want the same depth warning at line %d", i, pa, pb, 7+8*i)
		}
		if unsafe.StringData(pa.Msg) != unsafe.StringData(pb.Msg) {
			t.Errorf("problem %d: the two files' %q are two copies", i, pa.Msg)
		}
	}
	if a.Problems[0].Msg == a.Problems[1].Msg {
		t.Errorf("both problems say %q, want depth 99 and 98", a.Problems[0].Msg)
	}
}
