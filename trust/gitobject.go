package trust

import (
	"bytes"
	"strings"
)

// CommitObject splits a raw commit object (the bytes Git hashes, as `git
// cat-file commit` prints them) into its payload and signature, as git's
// parse_signed_commit does: the gpgsig header (gpgsig-sha256 in a SHA-256
// repository) and its continuation lines are the signature; the rest,
// byte for byte, is what was signed. Reading the raw object rather than
// re-encoding a parsed one keeps headers a parser does not know (mergetag,
// encoding) in the payload, where the signature covers them.
func CommitObject(id string, raw []byte) Object {
	o := Object{Kind: "commit", ID: id}
	var payload, sig bytes.Buffer
	rest := raw
	inSig := false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(bytes.TrimRight(line, "\n")) == 0 {
			// The end of the headers: the message follows verbatim.
			payload.Write(line)
			payload.Write(rest)
			break
		}
		switch {
		case bytes.HasPrefix(line, []byte("gpgsig ")) || bytes.HasPrefix(line, []byte("gpgsig-sha256 ")):
			_, v, _ := bytes.Cut(line, []byte(" "))
			sig.Write(v)
			inSig = true
		case inSig && line[0] == ' ':
			sig.Write(line[1:])
		default:
			inSig = false
			payload.Write(line)
		}
	}
	o.Payload, o.Signature = payload.Bytes(), sig.Bytes()
	return o
}

// TagObject splits a raw tag object (`git cat-file tag`) as git's
// parse_signature does: the signature is appended to the message and
// starts at the last line that opens an armored signature.
func TagObject(id string, raw []byte) Object {
	o := Object{Kind: "tag", ID: id, Payload: raw}
	start := -1
	for _, begin := range [][]byte{pgpBegin, sshBegin, x509Begin} {
		for off := 0; ; {
			i := bytes.Index(raw[off:], begin)
			if i < 0 {
				break
			}
			at := off + i
			if at == 0 || raw[at-1] == '\n' {
				start = max(start, at)
			}
			off = at + len(begin)
		}
	}
	if start >= 0 {
		o.Payload, o.Signature = raw[:start], raw[start:]
	}
	return o
}

// IsSigned reports whether o carries a signature.
func (o Object) IsSigned() bool { return len(strings.TrimSpace(string(o.Signature))) > 0 }
