package trust_test

import (
	"errors"
	"fmt"

	"certops/trust"
)

func ExampleParseMode() {
	m, err := trust.ParseMode("tag-and-head")
	fmt.Println(m, m.Tag(), m.Head(), err)
	// Output: tag-and-head true true <nil>
}

func ExampleKeyring_Verify() {
	var k *trust.Keyring // trusts no key
	_, err := k.Verify(trust.Object{Kind: "commit", ID: "4a447f73e7fa0c1d2e3f", Payload: []byte("tree ...\n\nmsg\n")})
	fmt.Println(err, errors.Is(err, trust.ErrUnsigned))
	// Output: commit 4a447f73e7fa: unsigned true
}
