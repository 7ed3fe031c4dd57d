package plan

import (
	"sync"
	"sync/atomic"
)

// interned is the table of the strings that many descriptions share (the
// entity type, a key type, an issuer name, a trust verdict, a protocol),
// packed as their index in it. It only grows, up to maxInterned strings,
// past which a string is packed as written: a table of every issuer seen
// would grow without bound with self-signed certificates. Readers load
// the list without a lock: an index is packed only after its string is in
// the list they load.
var interned struct {
	mu    sync.Mutex        // guards index and the writes to list
	index map[string]uint32 // by string: its index in list
	list  atomic.Pointer[[]string]
}

const maxInterned = 1 << 12

// intern returns the index of s in the table, adding it when there is
// room, and false when there is none.
func intern(s string) (uint32, bool) {
	interned.mu.Lock()
	defer interned.mu.Unlock()
	if i, ok := interned.index[s]; ok {
		return i, true
	}
	var list []string
	if p := interned.list.Load(); p != nil {
		list = *p
	}
	if len(list) >= maxInterned {
		return 0, false
	}
	if interned.index == nil {
		interned.index = make(map[string]uint32)
	}
	s = string(append([]byte(nil), s...)) // not a part of a larger string
	i := uint32(len(list))
	list = append(list, s) // beyond the length readers see, until Store
	interned.index[s] = i
	interned.list.Store(&list)
	return i, true
}

// internedAt returns the string of index i.
func internedAt(i uint32) string { return (*interned.list.Load())[i] }
