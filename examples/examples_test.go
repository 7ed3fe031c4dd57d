package examples_test

import (
	"testing"

	"certops/examples"
	"certops/schema"
)

// TestBasicIsValid loads the embedded example repository with the same
// loader the daemon uses and requires it to be valid.
func TestBasicIsValid(t *testing.T) {
	res, err := schema.Load(examples.Basic, schema.Options{Root: "basic"})
	if err != nil {
		t.Fatalf("Load(examples.Basic) error: %v", err)
	}
	if err := res.Problems.Err(); err != nil {
		t.Fatalf("examples/basic is invalid:\n%v", err)
	}
	want := map[string]bool{"shop-example-com": true, "wildcard-example-com": true, "api-example-net": true, "default": true}
	for _, e := range res.Entities {
		if !want[e.Name] {
			t.Errorf("unexpected entity %q", e.Name)
		}
		delete(want, e.Name)
		if _, err := e.Material(schema.Literal); err != nil {
			t.Errorf("entity %s: %v", e.Name, err)
		}
	}
	for name := range want {
		t.Errorf("entity %q missing from examples/basic", name)
	}
}
