package admin_test

import (
	"fmt"

	"certops/reconciler/admin"
)

// The daemon checks its admin address before it listens: beyond loopback,
// POST /api/v1/reconcile must be protected by a bearer token.
func ExampleCheckAddress() {
	fmt.Println(admin.CheckAddress("127.0.0.1:9180", nil))
	fmt.Println(admin.CheckAddress("0.0.0.0:9180", []byte("s3cret")))
	fmt.Println(admin.CheckAddress(":9180", nil) != nil)
	// Output:
	// <nil>
	// <nil>
	// true
}
