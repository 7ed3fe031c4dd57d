package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"certops/schema"
)

// Plan is what applying a desired state would change in a running one:
// one Change per entity created, updated or deleted, sorted by name. It
// holds descriptions only, never a private key or a secret value, so it is
// safe to print, log and serve. `certops diff` prints it.
type Plan struct {
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
}

// Summary counts the changes of a plan.
type Summary struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Delete    int `json:"delete"`
	Unchanged int `json:"unchanged"`
}

// Action is what a change does to an entity.
type Action string

// Actions.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// String returns the action's name.
func (a Action) String() string { return string(a) }

// Change is the change of one entity. Fields lists, for an update, what
// differs; for a create, what the new entity is.
type Change struct {
	Action Action        `json:"action"`
	Name   string        `json:"name"`
	File   string        `json:"file,omitempty"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one field of a change: a value from Old to New, or
// elements Added to and Removed from a set.
type FieldChange struct {
	Field   string   `json:"field"`
	Old     string   `json:"old,omitempty"`
	New     string   `json:"new,omitempty"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// Diff compares the running entities with the desired ones by name.
func Diff(running, desired []EntityInfo) *Plan {
	old := make(map[string]*EntityInfo, len(running))
	for i := range running {
		old[running[i].Name] = &running[i]
	}
	p := &Plan{Changes: []Change{}}
	seen := make(map[string]bool, len(desired))
	for i := range desired {
		d := &desired[i]
		seen[d.Name] = true
		o, ok := old[d.Name]
		if !ok {
			p.Changes = append(p.Changes, Change{Action: ActionCreate, Name: d.Name, File: d.File, Fields: describeNew(d)})
			p.Summary.Create++
			continue
		}
		fields := diffEntity(o, d)
		if len(fields) == 0 {
			p.Summary.Unchanged++
			continue
		}
		p.Changes = append(p.Changes, Change{Action: ActionUpdate, Name: d.Name, File: d.File, Fields: fields})
		p.Summary.Update++
	}
	for i := range running {
		if !seen[running[i].Name] {
			p.Changes = append(p.Changes, Change{Action: ActionDelete, Name: running[i].Name, File: running[i].File})
			p.Summary.Delete++
		}
	}
	slices.SortFunc(p.Changes, func(a, b Change) int { return strings.Compare(a.Name, b.Name) })
	return p
}

func describeNew(d *EntityInfo) []FieldChange {
	var f []FieldChange
	if d.Type != "" && d.Type != "server" {
		f = append(f, FieldChange{Field: "type", New: d.Type})
	}
	if d.Disabled {
		f = append(f, FieldChange{Field: "status", New: statusName(true)})
	}
	if d.Desc != "" {
		f = append(f, FieldChange{Field: "desc", New: d.Desc})
	}
	if len(d.SNIs) > 0 {
		f = append(f, FieldChange{Field: "snis", Added: d.SNIs})
	}
	for i, c := range d.Chains {
		f = append(f, FieldChange{Field: chainField("cert", i), New: certSummary(c)})
	}
	if len(d.ClientCA) > 0 {
		f = append(f, FieldChange{Field: "client.ca", New: caSummary(d.ClientCA)})
	}
	if len(d.Protocols) > 0 {
		f = append(f, FieldChange{Field: "ssl_protocols", New: strings.Join(d.Protocols, ", ")})
	}
	if len(d.Labels) > 0 {
		f = append(f, FieldChange{Field: "labels", Added: labelList(d.Labels, slices.Sorted(maps.Keys(d.Labels)))})
	}
	return f
}

func diffEntity(o, d *EntityInfo) []FieldChange {
	var f []FieldChange
	if o.Type != d.Type {
		f = append(f, FieldChange{Field: "type", Old: o.Type, New: d.Type})
	}
	if o.File != d.File {
		f = append(f, FieldChange{Field: "file", Old: o.File, New: d.File})
	}
	if o.Disabled != d.Disabled {
		f = append(f, FieldChange{Field: "status", Old: statusName(o.Disabled), New: statusName(d.Disabled)})
	}
	if o.Desc != d.Desc {
		f = append(f, FieldChange{Field: "desc", Old: o.Desc, New: d.Desc})
	}
	if added, removed := setDiff(o.SNIs, d.SNIs); len(added)+len(removed) > 0 {
		f = append(f, FieldChange{Field: "snis", Added: added, Removed: removed})
	}
	for i := range max(len(o.Chains), len(d.Chains)) {
		switch {
		case i >= len(o.Chains):
			f = append(f, FieldChange{Field: chainField("cert", i), New: certSummary(d.Chains[i])})
		case i >= len(d.Chains):
			f = append(f, FieldChange{Field: chainField("cert", i), Old: certSummary(o.Chains[i])})
		default:
			oc, dc := o.Chains[i], d.Chains[i]
			if oc.Fingerprint != dc.Fingerprint || oc.CertRef != dc.CertRef {
				f = append(f, FieldChange{Field: chainField("cert", i), Old: certSummary(oc), New: certSummary(dc)})
			}
			if oc.PublicKeyFingerprint != dc.PublicKeyFingerprint || oc.KeyRef != dc.KeyRef {
				f = append(f, FieldChange{Field: chainField("key", i), Old: keySummary(oc), New: keySummary(dc)})
			}
		}
	}
	if caSummary(o.ClientCA) != caSummary(d.ClientCA) {
		f = append(f, FieldChange{Field: "client.ca", Old: caSummary(o.ClientCA), New: caSummary(d.ClientCA)})
	}
	if !slices.Equal(o.Protocols, d.Protocols) {
		f = append(f, FieldChange{Field: "ssl_protocols", Old: protocolList(o.Protocols), New: protocolList(d.Protocols)})
	}
	if !maps.Equal(o.Labels, d.Labels) {
		var added, removed []string
		for _, k := range slices.Sorted(maps.Keys(d.Labels)) {
			if ov, ok := o.Labels[k]; !ok || ov != d.Labels[k] {
				added = append(added, k+"="+d.Labels[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
			if dv, ok := d.Labels[k]; !ok || dv != o.Labels[k] {
				removed = append(removed, k+"="+o.Labels[k])
			}
		}
		f = append(f, FieldChange{Field: "labels", Added: added, Removed: removed})
	}
	return f
}

// statusName shows an entity's APISIX status in a plan.
func statusName(disabled bool) string {
	if disabled {
		return "disabled (status 0: not served)"
	}
	return "enabled"
}

func chainField(kind string, i int) string {
	if i == 0 {
		return kind
	}
	return fmt.Sprintf("%ss[%d]", kind, i-1)
}

// certSummary names a certificate by serial, expiry and fingerprint, or by
// its reference when it was not resolved.
func certSummary(c ChainInfo) string {
	if c.Fingerprint == "" {
		if c.CertRef != "" {
			return c.CertRef
		}
		return "(unreadable)"
	}
	s := fmt.Sprintf("serial %s, not after %s, sha256 %s", c.Serial, c.NotAfter.UTC().Format(time.RFC3339), shortHex(c.Fingerprint))
	if c.CertRef != "" {
		s += " (" + c.CertRef + ")"
	}
	return s
}

func keySummary(c ChainInfo) string {
	switch {
	case c.PublicKeyFingerprint != "" && c.KeyRef != "":
		return "public key sha256 " + shortHex(c.PublicKeyFingerprint) + " (" + c.KeyRef + ")"
	case c.PublicKeyFingerprint != "":
		return "public key sha256 " + shortHex(c.PublicKeyFingerprint)
	case c.KeyRef != "":
		return c.KeyRef
	}
	return "(unreadable)"
}

func caSummary(cas []ChainInfo) string {
	parts := make([]string, len(cas))
	for i, c := range cas {
		if c.Fingerprint != "" {
			parts[i] = c.Subject + " sha256 " + shortHex(c.Fingerprint)
		} else {
			parts[i] = c.CertRef
		}
	}
	return strings.Join(parts, "; ")
}

func protocolList(p []string) string {
	if len(p) == 0 {
		return "(default: TLSv1.2, TLSv1.3)"
	}
	return strings.Join(p, ", ")
}

func labelList(m map[string]string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}

// shortHex abbreviates a hex fingerprint to 16 digits: enough to tell two
// certificates apart in a review, short enough to read.
func shortHex(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func setDiff(old, new []string) (added, removed []string) {
	for _, s := range new {
		if !slices.Contains(old, s) {
			added = append(added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(new, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// String renders the plan for people: "+ create", "~ update" field by
// field, "- delete", and a summary line.
func (p *Plan) String() string {
	var b strings.Builder
	for _, c := range p.Changes {
		sign := map[Action]string{ActionCreate: "+", ActionUpdate: "~", ActionDelete: "-"}[c.Action]
		fmt.Fprintf(&b, "%s %s %s", sign, c.Action, c.Name)
		if c.File != "" {
			fmt.Fprintf(&b, " (%s)", schema.Printable(c.File))
		}
		b.WriteString("\n")
		for _, f := range c.Fields {
			fmt.Fprintf(&b, "    %s: %s\n", f.Field, f.text())
		}
	}
	fmt.Fprintf(&b, "Summary: %s.\n", p.Summary)
	return b.String()
}

// String renders the counts: "1 to create, 2 to update, 0 to delete, 7
// unchanged".
func (s Summary) String() string {
	return fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged", s.Create, s.Update, s.Delete, s.Unchanged)
}

func (f FieldChange) text() string {
	var parts []string
	for _, a := range f.Added {
		parts = append(parts, "+ "+a)
	}
	for _, r := range f.Removed {
		parts = append(parts, "- "+r)
	}
	switch {
	case f.Old != "" && f.New != "":
		parts = append(parts, schema.Printable(f.Old)+" → "+schema.Printable(f.New))
	case f.New != "":
		parts = append(parts, schema.Printable(f.New))
	case f.Old != "":
		parts = append(parts, "removed ("+schema.Printable(f.Old)+")")
	}
	return strings.Join(parts, ", ")
}
