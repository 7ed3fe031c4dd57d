package fleet

import (
	"context"
	"testing"
	"time"
)

// TestElection: of two publishers one leads; when the leader dies
// without resigning (its connection closes), the standby takes over within
// two lease periods; a leader that stops cleanly hands over at once.
func TestElection(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		const lease = 900 * time.Millisecond
		opts := Options{Lease: lease}
		a := openFleet(t, ns, "prod", opts)
		if err := a.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		ca, cancelA := context.WithCancel(ctx)
		ea := a.NewElection("a")
		doneA := make(chan struct{})
		go func() { ea.Run(ca, nil); close(doneA) }()
		waitRole(t, ea, RoleLeader, 2*lease)

		b := openFleet(t, ns, "prod", opts)
		eb := b.NewElection("b")
		roles := make(chan Role, 4)
		go eb.Run(ctx, func(r Role) { roles <- r })
		time.Sleep(lease)
		if eb.Role() != RoleStandby || ea.Role() != RoleLeader {
			t.Fatalf("roles a=%s b=%s, want leader, standby", ea.Role(), eb.Role())
		}
		if id, err := b.Leader(ctx); err != nil || id != "a" {
			t.Errorf("Leader() = %q, %v; want a", id, err)
		}

		// Kill a: its connection drops, nothing resigns.
		killed := time.Now()
		a.conn.Close()
		cancelA()
		<-doneA
		select {
		case r := <-roles:
			if r != RoleLeader {
				t.Fatalf("b became %s, want leader", r)
			}
		case <-time.After(3 * lease):
			t.Fatal("the standby did not take over")
		}
		if took := time.Since(killed); took > 2*lease {
			t.Errorf("takeover took %v, want within two lease periods (%v)", took, 2*lease)
		}

		// A third publisher stands by while b leads, and takes over when b dies.
		c := openFleet(t, ns, "prod", opts)
		ec := c.NewElection("c")
		go ec.Run(ctx, nil)
		time.Sleep(lease / 2)
		if ec.Role() != RoleStandby {
			t.Fatalf("c is %s while b leads, want standby", ec.Role())
		}
		b.conn.Close()
		waitRole(t, ec, RoleLeader, 2*lease)
	})
}

func waitRole(t *testing.T, e *Election, want Role, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for e.Role() != want {
		if time.Now().After(deadline) {
			t.Fatalf("role = %s after %v, want %s", e.Role(), within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
