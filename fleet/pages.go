package fleet

import (
	"encoding/json"
	"slices"
	"strings"
)

// pageSet is a publisher's manifest pages for its last index, kept so
// that the next publish re-encodes only the pages whose entities changed:
// a one-entity change marshals and hashes one page of √n entries, not
// all n. It is a cache: its pages are always those buildPages would make
// for the index it was last given. Not safe for concurrent use (the
// Publisher's mutex guards it).
type pageSet struct {
	index   map[string]string // name → blob digest the pages describe
	entries [][]pageEntry     // by shard, sorted by name
	bytes   [][]byte          // by shard, as encoded
}

// pages returns the encoded pages of index, in shard order. The result is
// shared with the set: the caller must not modify it.
func (ps *pageSet) pages(index map[string]string) [][]byte {
	shards := shardCount(len(index))
	if ps.index == nil || len(ps.entries) != shards {
		ps.rebuild(index, shards)
		return ps.bytes
	}
	dirty := map[int]bool{}
	for name, d := range index {
		if old, ok := ps.index[name]; ok && old == d {
			continue
		}
		i := shardOf(name, shards)
		ps.entries[i] = upsertEntry(ps.entries[i], pageEntry{Name: name, Blob: d})
		dirty[i] = true
	}
	for name := range ps.index {
		if _, ok := index[name]; ok {
			continue
		}
		i := shardOf(name, shards)
		if j, found := slices.BinarySearchFunc(ps.entries[i], name, compareEntry); found {
			ps.entries[i] = slices.Delete(ps.entries[i], j, j+1)
		}
		dirty[i] = true
	}
	for i := range dirty {
		ps.bytes[i] = encodePage(ps.entries[i])
	}
	ps.index = index
	return ps.bytes
}

func (ps *pageSet) rebuild(index map[string]string, shards int) {
	ps.entries = make([][]pageEntry, shards)
	for name, d := range index {
		i := shardOf(name, shards)
		ps.entries[i] = append(ps.entries[i], pageEntry{Name: name, Blob: d})
	}
	ps.bytes = make([][]byte, shards)
	for i := range ps.entries {
		slices.SortFunc(ps.entries[i], func(a, b pageEntry) int { return strings.Compare(a.Name, b.Name) })
		ps.bytes[i] = encodePage(ps.entries[i])
	}
	ps.index = index
}

func compareEntry(e pageEntry, name string) int { return strings.Compare(e.Name, name) }

// upsertEntry sets e in the sorted entries.
func upsertEntry(entries []pageEntry, e pageEntry) []pageEntry {
	j, found := slices.BinarySearchFunc(entries, e.Name, compareEntry)
	if found {
		entries[j] = e
		return entries
	}
	return slices.Insert(entries, j, e)
}

// encodePage is a page's wire form.
func encodePage(entries []pageEntry) []byte {
	if entries == nil {
		entries = []pageEntry{}
	}
	b, _ := json.Marshal(page{Entries: entries}) // plain strings: cannot fail
	return b
}
