package trust

import "fmt"

// Mode says which objects of a revision must carry a trusted signature, as
// Flux's .spec.verify.mode does (HEAD, Tag, TagAndHEAD).
type Mode int

const (
	// ModeOff verifies nothing: the zero value.
	ModeOff Mode = iota
	// ModeHead requires the commit the ref points to to be signed.
	ModeHead
	// ModeTag requires the ref to be an annotated tag, and the tag to be
	// signed; the commit it points to need not be.
	ModeTag
	// ModeTagAndHead requires both the annotated tag and its commit to be
	// signed.
	ModeTagAndHead
)

// Modes lists the modes a flag accepts, in the order --help shows them.
var Modes = []Mode{ModeHead, ModeTag, ModeTagAndHead}

// ParseMode reads a mode as --verify-signatures takes it: "head", "tag" or
// "tag-and-head"; "" and "off" are [ModeOff].
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "off":
		return ModeOff, nil
	case "head":
		return ModeHead, nil
	case "tag":
		return ModeTag, nil
	case "tag-and-head":
		return ModeTagAndHead, nil
	}
	return ModeOff, fmt.Errorf("signature verification mode %q: want head, tag or tag-and-head", s)
}

// String returns the mode as ParseMode reads it.
func (m Mode) String() string {
	switch m {
	case ModeOff:
		return "off"
	case ModeHead:
		return "head"
	case ModeTag:
		return "tag"
	case ModeTagAndHead:
		return "tag-and-head"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Set implements flag.Value (and pflag.Value with Type).
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the flag's value in --help.
func (m *Mode) Type() string { return "head|tag|tag-and-head" }

// Head reports whether the mode requires a signed commit.
func (m Mode) Head() bool { return m == ModeHead || m == ModeTagAndHead }

// Tag reports whether the mode requires a signed annotated tag.
func (m Mode) Tag() bool { return m == ModeTag || m == ModeTagAndHead }
