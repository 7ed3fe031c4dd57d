package ref

import (
	"errors"
	"slices"
)

func init() {
	Register(Scheme{Name: "vault", Prefix: SecretPrefix, Usage: "$secret://vault/<path>/<field>", Check: checkVault})
}

// checkVault: a secret path (mount first, or a secret manager id and a key
// path) and a field; no "." or ".." segments, which an HTTP client would
// collapse into another path than the one reviewed.
func checkVault(_ string, segs []string) error {
	if len(segs) < 2 {
		return errors.New("want $secret://vault/<path>/<field>: a path and a field")
	}
	if slices.Contains(segs, ".") || slices.Contains(segs, "..") {
		return errors.New("path segments . and .. are not allowed")
	}
	return nil
}
