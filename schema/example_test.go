package schema_test

import (
	"fmt"
	"os"
	"testing/fstest"

	"certops/schema"
)

// Load validates a repository given as an fs.FS: here two entities whose
// material is in Vault and the environment (references are checked for
// syntax only) and a policy. An entity that fails the schema or the policy
// is not among the entities; its other fields are still checked.
func ExampleLoad() {
	repo := fstest.MapFS{
		"policy.cue": {Data: []byte("package certops\n\n#SSL: labels: team: string\n")},
		"shop.yaml": {Data: []byte(`name: shop
snis: [shop.example.com]
cert: $secret://vault/kv/tls/shop/cert
key: $secret://vault/kv/tls/shop/key
labels: {team: storefront}
`)},
		"api.yaml": {Data: []byte(`name: api
snis: [api.example.com, 10.0.0.1]
cert: $env://API_CERT
key: $env://API_KEY
`)},
		"README.md": {Data: []byte("# certificates\n")},
	}
	res, err := schema.Load(repo, schema.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range res.Entities {
		fmt.Println("entity", e.Name, e.SNIs, len(e.References()), "references")
	}
	schema.WriteReport(os.Stdout, res, schema.FormatText, schema.ReportOptions{Verbose: true})
	// Output:
	// entity shop [shop.example.com] 2 references
	// ignored: README.md
	// api.yaml:1:1: labels.team: error: required field is missing (want string)
	// api.yaml:2:25: snis[1]: error: an IP address is not a server name: SNI carries host names only (RFC 6066 section 3)
	// invalid: 2 entities in 2 files: 2 errors, 0 warnings
}
