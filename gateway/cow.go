package gateway

import (
	"maps"
	"slices"
)

// Copy-on-write storage shared between snapshots.
//
// A snapshot's records, bytes and indexes live in fixed-size chunks that
// successive snapshots share: an incremental Apply (Server.ApplyChanges)
// copies the few chunks it changes and the small tables that point to
// them, never the chunks of unchanged entities, so it costs O(changed)
// while every snapshot stays immutable for the handshakes that read it.
//
// Appends write past the end of the previous snapshot, into room its
// chunks left free: a snapshot never reads past its own length, so that
// is safe while handshakes read it, and a build that fails leaves only
// bytes no snapshot reads (the next build writes over them). This needs
// builds to be serialised and each to start from the running snapshot,
// which Server.applyMu guarantees. Chunks are allocated at full length and
// never resliced, so appending never writes a slice header that a reader
// of the previous snapshot reads.
//
// None of the chunk types holds a pointer: the garbage collector marks a
// chunk without scanning it, and the tables of chunks are small (one
// pointer per 256 records, per arena chunk, per index shard).

// vecChunk is the number of records in a chunk of a vec.
const vecChunk = 256

// vec is an append-only vector of pointer-free records in shared chunks.
type vec[T any] struct {
	chunks [][]T // each of length vecChunk
	n      uint32
}

func (v *vec[T]) len() uint32 { return v.n }

// at returns record i, i < len. The record must not be modified through
// it unless the chunk belongs to the build (see vecEdit).
func (v *vec[T]) at(i uint32) *T { return &v.chunks[i/vecChunk][i%vecChunk] }

// push appends x and returns its index.
func (v *vec[T]) push(x T) uint32 {
	if v.n%vecChunk == 0 && int(v.n/vecChunk) == len(v.chunks) {
		v.chunks = append(v.chunks, make([]T, vecChunk))
	}
	i := v.n
	*v.at(i) = x
	v.n++
	return i
}

// vecEdit changes records of a vec shared with the previous snapshot: the
// first change to a chunk copies it, and the table of chunks is copied
// once per build.
type vecEdit[T any] struct {
	v      *vec[T]
	table  bool            // v.chunks is this build's copy
	copied map[uint32]bool // chunks this build copied
}

func editVec[T any](v *vec[T]) *vecEdit[T] { return &vecEdit[T]{v: v, copied: map[uint32]bool{}} }

// set replaces record i, i < len.
func (e *vecEdit[T]) set(i uint32, x T) {
	k := i / vecChunk
	if !e.copied[k] {
		if !e.table {
			e.v.chunks = slices.Clone(e.v.chunks)
			e.table = true
		}
		e.v.chunks[k] = slices.Clone(e.v.chunks[k])
		e.copied[k] = true
	}
	e.v.chunks[k][i%vecChunk] = x
}

// arena holds the bytes of a snapshot (certificates, keys, names) in
// shared chunks.
type arena struct {
	chunks [][]byte // full length; the last one used up to tail
	tail   uint32
	size   uint64 // bytes stored, in all chunks
}

// span locates bytes in the arena.
type span struct{ chunk, off, n uint32 }

func (a *arena) bytes(sp span) []byte {
	c := a.chunks[sp.chunk]
	return c[sp.off : sp.off+sp.n : sp.off+sp.n]
}

// add stores p and returns where. A new chunk has room for at least grow
// bytes.
func (a *arena) add(p []byte, grow int) span {
	if len(a.chunks) == 0 || int(a.tail)+len(p) > len(a.chunks[len(a.chunks)-1]) {
		a.chunks = append(a.chunks, make([]byte, max(len(p), grow)))
		a.tail = 0
	}
	last := uint32(len(a.chunks) - 1)
	sp := span{chunk: last, off: a.tail, n: uint32(len(p))}
	copy(a.chunks[last][a.tail:], p)
	a.tail += uint32(len(p))
	a.size += uint64(len(p))
	return sp
}

// trim drops the unused room of the last chunk when it is more than a
// quarter of what the arena holds (a full build's estimate before
// deduplication); only a build's own arena may be trimmed.
func (a *arena) trim() {
	if len(a.chunks) == 0 {
		return
	}
	last := a.chunks[len(a.chunks)-1]
	if waste := uint64(len(last)) - uint64(a.tail); waste > a.size/4 {
		a.chunks[len(a.chunks)-1] = slices.Clone(last[:a.tail])
	}
}

// indexBits is log2 of the number of shards of an index.
const indexBits = 8

// index maps a seeded 64-bit hash to a record index. It is sharded by the
// hash's top bits so that an incremental Apply copies the shards it
// changes (about n/256 entries each), not the whole map; the shards are
// pointer-free maps, and a nil shard is empty.
type index [1 << indexBits]map[uint64]uint32

func (x *index) get(h uint64) (uint32, bool) {
	v, ok := x[h>>(64-indexBits)][h]
	return v, ok
}

// indexEdit changes an index shared with the previous snapshot: the first
// change to a shard copies it.
type indexEdit struct {
	x      *index
	hint   int // expected entries per shard, for a new index
	copied [1 << indexBits]bool
}

func (e *indexEdit) shard(h uint64) map[uint64]uint32 {
	k := h >> (64 - indexBits)
	if !e.copied[k] {
		m := make(map[uint64]uint32, max(len(e.x[k])+1, e.hint))
		maps.Copy(m, e.x[k])
		e.x[k] = m
		e.copied[k] = true
	}
	return e.x[k]
}

// put adds h; false when h is present already (a collision: names are
// checked for duplicates before).
func (e *indexEdit) put(h uint64, v uint32) bool {
	m := e.shard(h)
	if _, clash := m[h]; clash {
		return false
	}
	m[h] = v
	return true
}

func (e *indexEdit) del(h uint64) { delete(e.shard(h), h) }
