package source

import "strings"

// packListing copies the paths and content ids of n files into one
// allocation and calls put with each pair carved out of it, so that a
// listing a source keeps across fetches (a folder's Tree.Files and what it
// knows of each file, a Git tree's listing) costs one heap object instead
// of two per file: every garbage collection marks each live object, and
// small long-lived strings allocated among a walk's garbage pin
// mostly-empty spans (issue 13).
//
// pair returns the path and content id of file i, the id appended to
// scratch (64 bytes are free in it); it is called three times per file
// (to size the block, to fill it and to carve it) and must give the same
// answer each time.
//
// The trade-off: a block stays alive while any of its strings does. A tree
// returned before, or a key a reader kept (a cache by path), holds its
// walk's whole block, so a source's listings cost at most one walk's worth
// of bytes more than the files they still name; a full walk packs afresh,
// and the old blocks go once nothing names them.
func packListing(n int, pair func(i int, scratch []byte) (path string, id []byte), put func(i int, path, id string)) {
	if n == 0 {
		return
	}
	var scratch [64]byte // escapes to pair: one short-lived allocation
	total := 0
	for i := range n {
		p, id := pair(i, scratch[:0])
		total += len(p) + len(id)
	}
	var b strings.Builder
	b.Grow(total)
	for i := range n {
		p, id := pair(i, scratch[:0])
		b.WriteString(p)
		b.Write(id)
	}
	block := b.String()
	off := 0
	for i := range n {
		p, id := pair(i, scratch[:0])
		end := off + len(p)
		put(i, block[off:end], block[end:end+len(id)])
		off = end + len(id)
	}
}
