package ref

import (
	"fmt"
	"strings"
)

func init() {
	Register(Scheme{Name: "aws", Prefix: SecretPrefix, Usage: "$secret://aws/<secret-id>", Check: checkAWS})
}

// checkAWS: secret names allow letters, digits and /_+=.@-; ARNs add ':'.
func checkAWS(path string, _ []string) error {
	for _, r := range path {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r)) {
			return fmt.Errorf("%q is not allowed in an AWS secret id (letters, digits and /_+=.@-:)", r)
		}
	}
	return nil
}
