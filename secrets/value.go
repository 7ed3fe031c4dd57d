package secrets

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// redacted is what a secret value prints as, anywhere.
const redacted = "[REDACTED]"

// secret holds a resolved value. It never prints itself: a value that
// reaches a log line or a format verb by mistake shows as [REDACTED].
type secret []byte

// LogValue implements slog.LogValuer.
func (secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format implements fmt.Formatter for every verb, %x and %s included.
func (secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// String keeps the value out of fmt's Stringer path too.
func (secret) String() string { return redacted }

// GoString keeps it out of %#v.
func (secret) GoString() string { return redacted }

// bytes returns a copy of the value that the caller owns.
func (s secret) bytes() []byte { return slices.Clone([]byte(s)) }
