package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"certops/reconciler"
	"certops/schema"
)

// Status writes a daemon's status for people: the source, the applied
// revision and its age, the last attempt and its errors, the entity count,
// the certificates expiring within the warning window and the degraded
// entities. ready is whether the daemon is ready (the admin API's
// /readyz); now is the reference time of ages; color as for [Text].
func Status(w io.Writer, st *reconciler.Status, ready bool, now time.Time, color bool) error {
	paint := func(c, s string) string {
		if !color || c == "" {
			return s
		}
		return c + s + ansiReset
	}
	var b strings.Builder
	// Labels in a fixed-width column, so scripts and people find them at
	// the same place whatever is shown.
	tw := &b
	fmt.Fprintf(tw, "%-15s%s\n", "Source:", schema.Printable(st.Source))
	if ready {
		fmt.Fprintf(tw, "%-15s%s\n", "Ready:", paint(ansiGreen, "yes"))
	} else {
		fmt.Fprintf(tw, "%-15s%s\n", "Ready:", paint(ansiRed, "no (no revision applied yet)"))
	}
	if st.Applied != nil {
		fmt.Fprintf(tw, "%-15s%s at %s (%s)\n", "Applied:", shortRev(st.Applied.ID), st.Applied.Time.UTC().Format(time.RFC3339), age(now, st.Applied.Time))
	} else {
		fmt.Fprintf(tw, "%-15snothing yet\n", "Applied:")
	}
	if a := st.LastAttempt; a != nil {
		c := ""
		switch a.Result {
		case reconciler.ResultApplied, reconciler.ResultUnchanged:
			c = ansiGreen
		case reconciler.ResultStalled, reconciler.ResultFailed:
			c = ansiRed
		}
		rev := ""
		if a.Revision != "" {
			rev = " of " + shortRev(a.Revision)
		}
		fmt.Fprintf(tw, "%-15s%s%s at %s (%s)\n", "Last attempt:", paint(c, a.Result.String()), rev, a.Time.UTC().Format(time.RFC3339), age(now, a.Time))
	}
	if r := st.Running; r != nil {
		fmt.Fprintf(tw, "%-15s%s since %s (%s)\n", "Running:", r.Phase, r.Since.UTC().Format(time.RFC3339), age(now, r.Since))
	}
	fmt.Fprintf(tw, "%-15s%d\n", "Entities:", st.Entities)
	if st.Plan != nil {
		fmt.Fprintf(tw, "%-15s%d created, %d updated, %d deleted, %d unchanged\n", "Last plan:", st.Plan.Create, st.Plan.Update, st.Plan.Delete, st.Plan.Unchanged)
	}
	if len(st.Expiring) == 0 {
		fmt.Fprintf(tw, "%-15snone within the warning window\n", "Expiring:")
	} else {
		fmt.Fprintf(tw, "%-15s%s\n", "Expiring:", paint(ansiYellow, fmt.Sprintf("%d within the warning window", len(st.Expiring))))
	}
	if len(st.Degraded) == 0 {
		fmt.Fprintf(tw, "%-15snone\n", "Degraded:")
	} else {
		fmt.Fprintf(tw, "%-15s%s\n", "Degraded:", paint(ansiRed, degradedSummary(st.Degraded)))
	}

	if a := st.LastAttempt; a != nil && len(a.Errors) > 0 {
		fmt.Fprintf(&b, "\nProblems of the last attempt:\n")
		for _, p := range a.Errors {
			fmt.Fprintf(&b, "  %s\n", p.Error())
		}
	}
	if len(st.Expiring) > 0 {
		fmt.Fprintf(&b, "\nExpiring certificates:\n")
		for _, e := range st.Expiring {
			fmt.Fprintf(&b, "  %s chain %d (%s): not after %s (%s)\n", e.Entity, e.Chain, e.Subject,
				e.NotAfter.UTC().Format(time.RFC3339), until(now, e.NotAfter))
		}
	}
	if len(st.Degraded) > 0 {
		fmt.Fprintf(&b, "\nDegraded entities:\n")
		for _, d := range st.Degraded {
			fmt.Fprintf(&b, "  %s: %s\n", d.Entity, d.Reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shortRev abbreviates a commit id as git does; other revisions (a
// directory's content hash, "embedded") are shown as they are.
func shortRev(rev string) string {
	if len(rev) == 40 && strings.Trim(rev, "0123456789abcdef") == "" {
		return rev[:12]
	}
	return rev
}

func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return humanDuration(d) + " ago"
}

func until(now, t time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return "expired " + humanDuration(-d) + " ago"
	}
	return "in " + humanDuration(d)
}

// humanDuration rounds d to its largest unit: 45s, 12m, 3h, 5d.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// degradedSummary counts the degraded entities by what they serve.
func degradedSummary(list []reconciler.Degraded) string {
	unserved := 0
	for _, d := range list {
		if !d.Served {
			unserved++
		}
	}
	var parts []string
	if n := len(list) - unserved; n == 1 {
		parts = append(parts, "1 entity serves material that could not be brought up to date")
	} else if n > 1 {
		parts = append(parts, fmt.Sprintf("%d entities serve material that could not be brought up to date", n))
	}
	if unserved > 0 {
		parts = append(parts, fmt.Sprintf("%d not served", unserved))
	}
	return strings.Join(parts, ", ")
}
