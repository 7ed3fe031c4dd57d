package schema

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Values returns the bytes of a field value: the PEM text itself, or the
// resolved value of a secret reference. The reconciler supplies it.
type Values func(value string) ([]byte, error)

// Literal is the Values of an entity without secret references: it
// returns PEM text as is and refuses references.
func Literal(value string) ([]byte, error) {
	if IsReference(value) {
		return nil, errors.New("secret reference is not resolved here")
	}
	return []byte(value), nil
}

// Material parses the entity's chains, keys and client CA, with values
// resolving each field, and runs the checks of DESIGN.md 2.1 on the
// result: every PEM parses, each key matches its certificate, every SNI is
// covered by every chain, every certificate is within its validity window,
// the client CA bundle holds CA certificates. Errors name the entity, the
// field and its reference, never a value; an error from values is wrapped.
//
// An entity without references was parsed during validation, and the
// first call returns that material, whatever values is, and the entity
// forgets it: the certificates and keys are parsed once on their way to
// the gateway, and the entity, which a cache may keep for long, never
// holds parsed (pointer-dense) material on its own. Later calls parse
// again; for a lean entity (see [Options].Reread), from its file read
// again. Material is safe for concurrent use; the returned Material is the
// caller's.
func (e *Entity) Material(values Values) (*Material, error) {
	if h := e.material.Swap(nil); h != nil {
		if m, err := h.material(); err == nil {
			return m, nil
		}
		// Not reached: the bytes parsed during validation. Parse from
		// the values as for a later call.
	}
	if e.lean {
		// A lean entity has no text to parse: its file, read again, has.
		written, err := e.reread()
		if err != nil {
			return nil, err
		}
		return written.Material(values)
	}
	now := time.Now
	if e.v != nil {
		now = e.v.now
	}
	m, findings, err := e.checkMaterial(values, true, nil, now(), 0)
	if err != nil {
		return nil, err
	}
	var msgs []string
	first := ""
	for _, f := range findings {
		if f.warn {
			continue
		}
		if first == "" {
			first = f.field
		}
		msgs = append(msgs, e.describeField(f.field)+": "+f.msg)
	}
	if len(msgs) > 0 {
		return nil, &MaterialError{Field: first, Pos: e.Position(first), msg: fmt.Sprintf("entity %s: %s", e.Name, strings.Join(msgs, "; "))}
	}
	if m == nil {
		return nil, fmt.Errorf("entity %s: no usable certificate", e.Name)
	}
	return m, nil
}

// MaterialError is why Material refused an entity's values: what is wrong
// with each field at fault, in its message. Field is the native path of
// the first ("key", "certs[1]"), and Pos where the file writes it.
type MaterialError struct {
	Field string
	Pos   Pos
	msg   string
}

func (e *MaterialError) Error() string { return e.msg }

// describeField names a native field with the reference it holds, if any.
func (e *Entity) describeField(field string) string {
	var v string
	switch {
	case field == "cert":
		v = e.Chains[0].Cert
	case field == "key":
		v = e.Chains[0].Key
	case field == "client.ca":
		v = e.ClientCA
	default:
		var i int
		if _, err := fmt.Sscanf(field, "certs[%d]", &i); err == nil && i+1 < len(e.Chains) {
			v = e.Chains[i+1].Cert
		} else if _, err := fmt.Sscanf(field, "keys[%d]", &i); err == nil && i+1 < len(e.Chains) {
			v = e.Chains[i+1].Key
		}
	}
	return describe(field, v)
}
