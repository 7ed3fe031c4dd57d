package reconciler

import (
	"strings"

	"certops/schema"
)

// lastGood applies a resolve per entity (issue 17.4, 17.5) instead of all
// or nothing. It runs when the revision being resolved is the one served
// (a rotation: secret values changed without a commit) or when nothing is
// served yet (a first start, or a restart whose restore cannot resolve
// everything). An entity whose material does not resolve or validate then
// keeps serving its applied build if it has one, and is left out if not;
// either way it is reported degraded with the reason and tried again at
// the next run, while every other entity moves on; left are those left
// out, which the applied state keeps to try again (appliedState.unserved). A
// new revision while one is served stays all or nothing (DESIGN.md 1).
func (r *Reconciler) lastGood(entities []*schema.Entity, out []*built, degraded []Degraded, problems schema.ErrorList) (_ []*built, _ []Degraded, left []*schema.Entity) {
	done := make(map[string]bool, len(out))
	for _, b := range out {
		done[b.name()] = true
	}
	byFile := make(map[string][]*schema.Entity)
	for _, e := range entities {
		byFile[e.Pos.File] = append(byFile[e.Pos.File], e)
	}
	reasons := make(map[*schema.Entity][]string) // each problem's, by the entity whose document holds it
	for _, p := range problems {
		if e := ownerOf(byFile[p.Pos.File], p.Pos); e != nil {
			reasons[e] = append(reasons[e], p.Msg)
		}
	}
	for _, e := range entities {
		if done[e.Name] {
			continue
		}
		reason := strings.Join(reasons[e], "; ")
		if b, ok := r.appliedBuild(e.Name); ok {
			out = append(out, b)
			degraded = append(degraded, Degraded{Entity: e.Name, Reason: "keeps its last good material: " + reason, Served: true})
			r.log.Warn("rotated secrets refused for one entity; it keeps serving its last good material", "entity", e.Name, "reason", reason)
			continue
		}
		degraded = append(degraded, Degraded{Entity: e.Name, Reason: "not served: " + reason})
		left = append(left, e)
		r.log.Warn("entity not served: its material does not resolve or validate; the others are served", "entity", e.Name, "reason", reason)
	}
	return out, degraded, left
}

// appliedBuild returns what the applied state serves for an entity.
func (r *Reconciler) appliedBuild(name string) (*built, bool) {
	if r.applied == nil {
		return nil, false
	}
	b, ok := r.applied.built[name]
	return b, ok
}

// ownerOf returns the entity of entities, those of pos's file, whose
// document holds pos: the last to start at or before it (a problem is at
// the entity's start, or at the field at fault). nil for none.
func ownerOf(entities []*schema.Entity, pos schema.Pos) *schema.Entity {
	var owner *schema.Entity
	for _, e := range entities {
		if e.Pos.Line > pos.Line || e.Pos.Line == pos.Line && e.Pos.Col > pos.Col {
			continue
		}
		if owner == nil || e.Pos.Line > owner.Pos.Line || e.Pos.Line == owner.Pos.Line && e.Pos.Col > owner.Pos.Col {
			owner = e
		}
	}
	return owner
}
