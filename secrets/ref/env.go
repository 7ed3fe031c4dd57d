package ref

import (
	"errors"
	"fmt"
)

func init() {
	Register(Scheme{Name: "env", Prefix: EnvPrefix, Usage: "$env://NAME[/field]", Check: checkEnv})
}

// checkEnv: NAME, or NAME/field where field is a key of the variable's
// JSON object value.
func checkEnv(_ string, segs []string) error {
	if len(segs) > 2 {
		return errors.New("want $env://NAME or $env://NAME/field")
	}
	if !isEnvName(segs[0]) {
		return fmt.Errorf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", segs[0])
	}
	return nil
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
