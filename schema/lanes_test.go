package schema

import (
	"testing"
	"testing/synctest"
)

// TestLanesUsableAcrossSynctestBubbles validates a file first inside a
// synctest bubble, then outside it: the lanes' state must not belong to the
// bubble that happened to use it first (the reconciler's time-driven tests
// run inside bubbles).
func TestLanesUsableAcrossSynctestBubbles(t *testing.T) {
	src := []byte("name: a\nsnis: [a.example.com]\ncert: x\nkey: y\n")
	synctest.Test(t, func(t *testing.T) {
		v, _ := NewValidator(nil, Options{})
		if fr := v.File("a.yaml", src); len(fr.Problems) == 0 {
			t.Errorf("File(a.yaml) inside a bubble found no problem in a bad certificate")
		}
	})
	v, _ := NewValidator(nil, Options{})
	if fr := v.File("a.yaml", src); len(fr.Problems) == 0 {
		t.Errorf("File(a.yaml) after a bubble found no problem in a bad certificate")
	}
}
