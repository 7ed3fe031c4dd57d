package plan

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"time"
)

// Packed is a description ([EntityInfo]) in a compact form: one string of
// bytes, which the garbage collector does not scan, instead of the dozens
// of strings, slices and maps of an EntityInfo, which it would mark on
// every cycle. A reconciler holding 10,000 descriptions keeps them packed
// and unpacks the few it reads. [Pack] and [Packed.Unpack] round-trip
// every EntityInfo exactly (nil and empty lists told apart); a serial or
// fingerprint in lowercase hex takes half its length, a string that many
// descriptions share (an issuer) an index. A Packed is immutable
// and safe for concurrent use.
type Packed string

// The layout, in order: the name first (so that Name reads it alone),
// then type, file, desc, disabled, SNIs, protocols, labels (by key),
// chains and client CAs. A string is a uvarint whose low two bits say how
// it is packed (see appendString) and the rest its length or index; a
// list (or map) is uvarint 0 for nil, else its length plus one, then its
// elements. A chain starts with a flags byte saying which times are set
// and whether its SANs are the entity's SNIs.
const (
	flagNotBefore = 1 << iota
	flagNotAfter
	flagSANsAreSNIs // the SANs are not packed: they equal the SNIs
)

// How a string is packed: its bytes as written, an index in the interned
// table, or lowercase hex digits two to a byte.
const (
	strPlain = iota
	strInterned
	strHex
	strKinds = 4 // the low two bits
)

// Pack returns the packed form of e.
func Pack(e *EntityInfo) Packed {
	return Packed(appendPacked(make([]byte, 0, 512), e))
}

// packChunk is the size of the blocks packAll packs records into.
const packChunk = 256 << 10

// packAll returns the packed forms of infos[order[i]], in that order, in
// blocks of up to packChunk bytes: a set's thousands of records are then
// a few objects, which a collection marks once each, rather than one each
// (issue 13). A block is filled to within a record of its size and lives
// as long as any record in it, so a set that has since replaced most of
// its records one by one keeps at most one set's worth more.
func packAll(infos []EntityInfo, order []int) []Packed {
	out := make([]Packed, len(order))
	var block strings.Builder // its String does not copy
	var ends []int            // of the block's records
	first := 0                // index in out of the block's first record
	done := func() {
		s, start := block.String(), 0
		for k, end := range ends {
			out[first+k], start = Packed(s[start:end]), end
		}
		first += len(ends)
		block, ends = strings.Builder{}, ends[:0]
	}
	scratch := make([]byte, 0, 512)
	packed := 0 // bytes of the records before this one
	for i, j := range order {
		scratch = appendPacked(scratch[:0], &infos[j])
		if block.Len() > 0 && block.Len()+len(scratch) > block.Cap() {
			done()
		}
		if block.Cap() == 0 {
			// Room for the records left, at the mean size so far (a
			// guess of 256 bytes for the first): a small set gets a
			// small block.
			mean := 256
			if i > 0 {
				mean = packed/i + 1
			}
			block.Grow(max(len(scratch), min(packChunk, mean*(len(order)-i))))
		}
		block.Write(scratch)
		ends = append(ends, block.Len())
		packed += len(scratch)
	}
	done()
	return out
}

// appendPacked appends the packed form of e to b.
func appendPacked(b []byte, e *EntityInfo) []byte {
	b = appendString(b, e.Name)
	b = appendShared(b, e.Type)
	b = appendString(b, e.File)
	b = appendString(b, e.Desc)
	if e.Disabled {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendStrings(b, e.SNIs, appendString)
	b = appendStrings(b, e.Protocols, appendShared)
	if e.Labels == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(e.Labels))+1)
		for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
			b = appendString(b, k)
			b = appendString(b, e.Labels[k])
		}
	}
	b = appendChains(b, e.Chains, e.SNIs)
	b = appendChains(b, e.ClientCA, e.SNIs)
	return b
}

// appendString packs s as written.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s))*strKinds+strPlain)
	return append(b, s...)
}

// appendShared packs s by its index in the interned table, where it fits:
// a string that many descriptions have.
func appendShared(b []byte, s string) []byte {
	if s == "" {
		return appendString(b, s)
	}
	if i, ok := intern(s); ok {
		return binary.AppendUvarint(b, uint64(i)*strKinds+strInterned)
	}
	return appendString(b, s)
}

// appendHex packs s two digits to a byte when it is lowercase hex (a
// serial, a fingerprint), else as written.
func appendHex(b []byte, s string) []byte {
	if s == "" || !isLowerHex(s) {
		return appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(s))*strKinds+strHex)
	for i := 0; i < len(s); i += 2 {
		c := unhex(s[i]) << 4
		if i+1 < len(s) {
			c |= unhex(s[i+1])
		}
		b = append(b, c)
	}
	return b
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func appendStrings(b []byte, list []string, add func([]byte, string) []byte) []byte {
	if list == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(list))+1)
	for _, s := range list {
		b = add(b, s)
	}
	return b
}

func appendChains(b []byte, chains []ChainInfo, snis []string) []byte {
	if chains == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(chains))+1)
	for i := range chains {
		b = appendChain(b, &chains[i], snis)
	}
	return b
}

func appendChain(b []byte, c *ChainInfo, snis []string) []byte {
	var flags byte
	if !c.NotBefore.IsZero() {
		flags |= flagNotBefore
	}
	if !c.NotAfter.IsZero() {
		flags |= flagNotAfter
	}
	if c.SANs != nil && snis != nil && slices.Equal(c.SANs, snis) {
		flags |= flagSANsAreSNIs // a leaf names the entity's SNIs, as a rule
	}
	b = append(b, flags)
	b = appendString(b, c.Subject)
	if flags&flagSANsAreSNIs == 0 {
		b = appendStrings(b, c.SANs, appendString)
	}
	b = appendHex(b, c.Serial)
	if flags&flagNotBefore != 0 {
		b = appendTime(b, c.NotBefore)
	}
	if flags&flagNotAfter != 0 {
		b = appendTime(b, c.NotAfter)
	}
	b = appendShared(b, c.KeyType)
	b = appendHex(b, c.Fingerprint)
	b = appendHex(b, c.PublicKeyFingerprint)
	b = appendString(b, c.CertRef)
	b = appendString(b, c.KeyRef)
	b = appendShared(b, c.Issuer)
	return appendShared(b, c.Trust)
}

// appendTime packs t as Unix seconds and nanoseconds; it unpacks in UTC,
// as Describe gives every time.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Name returns the entity's name without unpacking the rest.
func (p Packed) Name() string {
	r := reader{p: p}
	return r.str()
}

// typ returns the entity's type without unpacking the rest.
func (p Packed) typ() string {
	r := reader{p: p}
	r.skip()
	return r.str()
}

// Unpack returns the description p packs. Its strings share p's memory.
func (p Packed) Unpack() EntityInfo {
	r := reader{p: p}
	e := EntityInfo{Name: r.str(), Type: r.str(), File: r.str(), Desc: r.str()}
	e.Disabled = r.byte() != 0
	e.SNIs = r.strs()
	e.Protocols = r.strs()
	if n, ok := r.count(); ok {
		e.Labels = make(map[string]string, n)
		for range n {
			k := r.str()
			e.Labels[k] = r.str()
		}
	}
	e.Chains = r.chains(e.SNIs)
	e.ClientCA = r.chains(e.SNIs)
	return e
}

// expiry calls f with the subject and expiry of each of p's chains that
// has one, unpacking nothing else: the status's expiring list reads these
// alone.
func (p Packed) expiry(f func(chain int, subject string, notAfter time.Time)) {
	r := reader{p: p}
	for range 4 {
		r.skip() // name, type, file, desc
	}
	r.byte() // disabled
	r.skipStrs()
	r.skipStrs()
	if n, ok := r.count(); ok {
		for range 2 * n {
			r.skip()
		}
	}
	n, _ := r.count()
	for i := range n {
		flags := r.byte()
		subject := r.str()
		if flags&flagSANsAreSNIs == 0 {
			r.skipStrs()
		}
		r.skip() // serial
		if flags&flagNotBefore != 0 {
			r.time()
		}
		if flags&flagNotAfter == 0 {
			r.skipChainTail()
			continue
		}
		f(i, subject, r.time())
		r.skipChainTail()
	}
}

// reader unpacks a Packed. A Packed is made by Pack only, so it does not
// check lengths: a bad one panics, as a bad slice index would.
type reader struct {
	p   Packed
	off int
}

func (r *reader) byte() byte {
	c := r.p[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	var x uint64
	var s uint
	for {
		c := r.byte()
		if c < 0x80 {
			return x | uint64(c)<<s
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// str reads a string; one packed as written shares p's memory.
func (r *reader) str() string {
	x := r.uvarint()
	n := int(x / strKinds)
	switch x % strKinds {
	case strInterned:
		return internedAt(uint32(n))
	case strHex:
		const digits = "0123456789abcdef"
		out := make([]byte, n)
		for i := range out {
			c := r.p[r.off+i/2]
			if i%2 == 0 {
				c >>= 4
			}
			out[i] = digits[c&0xf]
		}
		r.off += (n + 1) / 2
		return string(out)
	}
	s := string(r.p[r.off : r.off+n])
	r.off += n
	return s
}

// skip skips a string.
func (r *reader) skip() {
	x := r.uvarint()
	n := int(x / strKinds)
	switch x % strKinds {
	case strPlain:
		r.off += n
	case strHex:
		r.off += (n + 1) / 2
	}
}

// count reads a list's length; false for nil.
func (r *reader) count() (int, bool) {
	n := r.uvarint()
	if n == 0 {
		return 0, false
	}
	return int(n - 1), true
}

func (r *reader) strs() []string {
	n, ok := r.count()
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *reader) skipStrs() {
	n, _ := r.count()
	for range n {
		r.skip()
	}
}

func (r *reader) time() time.Time {
	sec := r.varint()
	return time.Unix(sec, int64(r.uvarint())).UTC()
}

// skipChainTail skips what follows a chain's times.
func (r *reader) skipChainTail() {
	for range 7 {
		r.skip() // key type, fingerprints, cert_ref, key_ref, issuer, trust
	}
}

func (r *reader) chains(snis []string) []ChainInfo {
	n, ok := r.count()
	if !ok {
		return nil
	}
	out := make([]ChainInfo, n)
	for i := range out {
		c := &out[i]
		flags := r.byte()
		c.Subject = r.str()
		if flags&flagSANsAreSNIs != 0 {
			c.SANs = slices.Clone(snis)
		} else {
			c.SANs = r.strs()
		}
		c.Serial = r.str()
		if flags&flagNotBefore != 0 {
			c.NotBefore = r.time()
		}
		if flags&flagNotAfter != 0 {
			c.NotAfter = r.time()
		}
		c.KeyType = r.str()
		c.Fingerprint = r.str()
		c.PublicKeyFingerprint = r.str()
		c.CertRef = r.str()
		c.KeyRef = r.str()
		c.Issuer = r.str()
		c.Trust = r.str()
	}
	return out
}
