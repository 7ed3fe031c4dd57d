package e2e

import (
	"fmt"
	"testing"
)

// TestMassDeleteGuard checks the guard of DESIGN.md 6 on a watched
// directory of four entities: deleting three (75%) is refused under the
// default --max-delete 50% and applied with --max-delete 80%; deleting
// all of them is applied only with --allow-mass-delete.
func TestMassDeleteGuard(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "mass delete CA")
	tests := []struct {
		name    string
		flags   []string
		remove  int  // entities removed, from 4
		applied bool // whether the deletion is applied
	}{
		{"75% under the default 50%", nil, 3, false},
		{"75% under --max-delete 80%", []string{"--max-delete", "80%"}, 3, true},
		{"all without --allow-mass-delete", []string{"--max-delete", "100%"}, 4, false},
		{"all with --allow-mass-delete", []string{"--allow-mass-delete"}, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var leaves []*testLeaf
			for i := range 4 {
				sni := fmt.Sprintf("e%d.test", i)
				leaves = append(leaves, ca.issue(t, algECDSA, sni, []string{sni}))
				writeFile(t, dir, fmt.Sprintf("e%d.yaml", i), entity{name: fmt.Sprintf("e%d", i), snis: []string{sni}, chains: []*testLeaf{leaves[i]}}.yaml())
			}
			d := startDaemon(t, append([]string{"--source", dir}, tt.flags...)...)
			st, _ := d.status()
			first := st.Applied.Revision
			for i := range tt.remove {
				removeFile(t, dir, fmt.Sprintf("e%d.yaml", i))
			}
			// The directory's revision is a digest of its listing: wait for
			// an attempt at a revision other than the first.
			var raw []byte
			eventually(t, readyTimeout, "an attempt after the deletion", func() (bool, string) {
				st, raw = d.status()
				return st.LastAttempt != nil && st.LastAttempt.Revision != first, string(raw)
			})
			_, err := servedLeaf(d.listen, "e0.test", pool(ca))
			if applied := st.LastAttempt.Result == "applied"; applied != tt.applied || (err != nil) != tt.applied {
				t.Errorf("deleting %d of 4 with %v: last attempt %q, e0.test handshake error %v; want applied=%v\n%s", tt.remove, tt.flags, st.LastAttempt.Result, err, tt.applied, raw)
			}
			if tt.remove < 4 {
				waitServed(t, d.listen, "e3.test", pool(ca), leaves[3])
			}
		})
	}
}
