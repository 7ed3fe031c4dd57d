package plan

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// Packed is a description ([EntityInfo]) in a compact form: one string of
// bytes, which the garbage collector does not scan, instead of the dozens
// of strings, slices and maps of an EntityInfo, which it would mark on
// every cycle. A reconciler holding 10,000 descriptions keeps them packed
// and unpacks the few it reads. [Pack] and [Packed.Unpack] round-trip
// every EntityInfo exactly (nil and empty lists told apart); a SHA-256
// fingerprint in lowercase hex takes its 32 bytes. A Packed is immutable
// and safe for concurrent use.
type Packed string

// The layout, in order: the name first (so that Name reads it alone),
// then type, file, desc, disabled, SNIs, protocols, labels (by key),
// chains and client CAs. A string is a uvarint length and its bytes; a
// list (or map) is uvarint 0 for nil, else its length plus one, then its
// elements. A chain starts with a flags byte saying which times are set
// and which fingerprints are packed as 32 raw bytes.
const (
	flagNotBefore = 1 << iota
	flagNotAfter
	flagFingerprint // 32 bytes instead of a string
	flagPublicKey   // 32 bytes instead of a string
)

// Pack returns the packed form of e.
func Pack(e *EntityInfo) Packed {
	b := make([]byte, 0, 512)
	b = appendString(b, e.Name)
	b = appendString(b, e.Type)
	b = appendString(b, e.File)
	b = appendString(b, e.Desc)
	if e.Disabled {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendStrings(b, e.SNIs)
	b = appendStrings(b, e.Protocols)
	if e.Labels == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(e.Labels))+1)
		for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
			b = appendString(b, k)
			b = appendString(b, e.Labels[k])
		}
	}
	b = appendChains(b, e.Chains)
	b = appendChains(b, e.ClientCA)
	return Packed(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(list))+1)
	for _, s := range list {
		b = appendString(b, s)
	}
	return b
}

func appendChains(b []byte, chains []ChainInfo) []byte {
	if chains == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(chains))+1)
	for i := range chains {
		b = appendChain(b, &chains[i])
	}
	return b
}

func appendChain(b []byte, c *ChainInfo) []byte {
	var flags byte
	if !c.NotBefore.IsZero() {
		flags |= flagNotBefore
	}
	if !c.NotAfter.IsZero() {
		flags |= flagNotAfter
	}
	fp, fpRaw := rawSHA256(c.Fingerprint)
	if fpRaw {
		flags |= flagFingerprint
	}
	pk, pkRaw := rawSHA256(c.PublicKeyFingerprint)
	if pkRaw {
		flags |= flagPublicKey
	}
	b = append(b, flags)
	b = appendString(b, c.Subject)
	b = appendStrings(b, c.SANs)
	b = appendString(b, c.Serial)
	if flags&flagNotBefore != 0 {
		b = appendTime(b, c.NotBefore)
	}
	if flags&flagNotAfter != 0 {
		b = appendTime(b, c.NotAfter)
	}
	b = appendString(b, c.KeyType)
	if fpRaw {
		b = append(b, fp[:]...)
	} else {
		b = appendString(b, c.Fingerprint)
	}
	if pkRaw {
		b = append(b, pk[:]...)
	} else {
		b = appendString(b, c.PublicKeyFingerprint)
	}
	b = appendString(b, c.CertRef)
	b = appendString(b, c.KeyRef)
	b = appendString(b, c.Issuer)
	return appendString(b, c.Trust)
}

// appendTime packs t as Unix seconds and nanoseconds; it unpacks in UTC,
// as Describe gives every time.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// rawSHA256 returns the 32 bytes of a SHA-256 in lowercase hex (the form
// sha256Hex gives), and false for any other string, which is packed as
// written.
func rawSHA256(h string) (sum [32]byte, ok bool) {
	if len(h) != 2*len(sum) {
		return sum, false
	}
	for i := range len(h) {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return sum, false
		}
	}
	_, err := hex.Decode(sum[:], []byte(h))
	return sum, err == nil
}

// Name returns the entity's name without unpacking the rest.
func (p Packed) Name() string {
	r := reader{p: p}
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
	e.Chains = r.chains()
	e.ClientCA = r.chains()
	return e
}

// expiry calls f with the subject and expiry of each of p's chains that
// has one, unpacking nothing else: the status's expiring list reads these
// alone.
func (p Packed) expiry(f func(chain int, subject string, notAfter time.Time)) {
	r := reader{p: p}
	for range 4 {
		r.str() // name, type, file, desc
	}
	r.byte() // disabled
	r.skipStrs()
	r.skipStrs()
	if n, ok := r.count(); ok {
		for range 2 * n {
			r.str()
		}
	}
	n, _ := r.count()
	for i := range n {
		flags := r.byte()
		subject := r.str()
		r.skipStrs()
		r.str() // serial
		if flags&flagNotBefore != 0 {
			r.time()
		}
		if flags&flagNotAfter == 0 {
			r.skipChainTail(flags)
			continue
		}
		f(i, subject, r.time())
		r.skipChainTail(flags)
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

func (r *reader) str() string {
	n := int(r.uvarint())
	s := string(r.p[r.off : r.off+n])
	r.off += n
	return s
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
		r.str()
	}
}

func (r *reader) time() time.Time {
	sec := r.varint()
	return time.Unix(sec, int64(r.uvarint())).UTC()
}

func (r *reader) sha256(raw bool) string {
	if !raw {
		return r.str()
	}
	s := hex.EncodeToString([]byte(r.p[r.off : r.off+32]))
	r.off += 32
	return s
}

func (r *reader) skipSHA256(raw bool) {
	if raw {
		r.off += 32
		return
	}
	r.str()
}

// skipChainTail skips what follows a chain's times.
func (r *reader) skipChainTail(flags byte) {
	r.str() // key type
	r.skipSHA256(flags&flagFingerprint != 0)
	r.skipSHA256(flags&flagPublicKey != 0)
	for range 4 {
		r.str() // cert_ref, key_ref, issuer, trust
	}
}

func (r *reader) chains() []ChainInfo {
	n, ok := r.count()
	if !ok {
		return nil
	}
	out := make([]ChainInfo, n)
	for i := range out {
		c := &out[i]
		flags := r.byte()
		c.Subject = r.str()
		c.SANs = r.strs()
		c.Serial = r.str()
		if flags&flagNotBefore != 0 {
			c.NotBefore = r.time()
		}
		if flags&flagNotAfter != 0 {
			c.NotAfter = r.time()
		}
		c.KeyType = r.str()
		c.Fingerprint = r.sha256(flags&flagFingerprint != 0)
		c.PublicKeyFingerprint = r.sha256(flags&flagPublicKey != 0)
		c.CertRef = r.str()
		c.KeyRef = r.str()
		c.Issuer = r.str()
		c.Trust = r.str()
	}
	return out
}
