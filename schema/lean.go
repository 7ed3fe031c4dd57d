package schema

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrFileChanged is the error of Material on a lean entity whose file
// changed since it was validated: its text cannot be read again. The
// entity of the file as it is now replaces it at the next load; meanwhile
// what was built from it stays good.
var ErrFileChanged = errors.New("changed since it was validated")

// dropPEM makes e lean when its chains are all literal and were parsed
// during validation (its material is ready): the PEM text of its certs
// and keys is dropped, its validator reads it again when Material needs it. Its
// content hash, positions, checks and description do not depend on the
// text any more; a client CA bundle is kept (it is described from its
// text, and few entities have one).
func (e *Entity) dropPEM() {
	if e.material.Load() == nil {
		return // invalid, or it has references: Material reads its values
	}
	e.Chains, e.lean = leanChains(len(e.Chains)), true
}

// Lean reports whether e keeps no PEM text of its certs and keys (see
// [Options].Reread): its Chains then hold "" for each of them, and
// [Entity.Material] reads its file again. A sink that forwards entities
// as written needs a validator without Reread.
func (e *Entity) Lean() bool { return e.lean }

// noChains backs the Chains of lean entities: every one of them is the
// zero Chain, and entities are not modified once validated, so they share
// it instead of an allocation each.
var noChains [4]Chain

// leanChains returns n zero chains.
func leanChains(n int) []Chain {
	if n <= len(noChains) {
		return noChains[:n:n]
	}
	return make([]Chain, n)
}

// reread returns the entity of its file, read again and validated with
// its text kept, that is e: the same position, name and content hash.
// An error names the entity and the file, never a value.
func (e *Entity) reread() (*Entity, error) {
	v := e.v
	src, err := v.reread(e.Pos.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("entity %s: %s %w (it was removed)", e.Name, e.Pos.File, ErrFileChanged)
	}
	if err != nil {
		return nil, fmt.Errorf("entity %s: read %s again: %w", e.Name, e.Pos.File, err)
	}
	fr := v.file(e.Pos.File, src, false)
	for _, f := range fr.Entities {
		if f.Name == e.Name && f.Hash == e.Hash && f.Pos == e.Pos {
			return f, nil
		}
	}
	return nil, fmt.Errorf("entity %s: %s %w", e.Name, e.Pos.File, ErrFileChanged)
}
