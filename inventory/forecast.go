package inventory

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"certops/certcheck"
)

const week = 7 * 24 * time.Hour

// ParseHorizon reads a forecast horizon: "52w" (weeks), "90d" (days) or a
// Go duration ("2160h"), rounded up to whole weeks (at least one).
func ParseHorizon(s string) (int, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "w"), strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("horizon %q: want a positive number of weeks (52w) or days (90d)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if s[len(s)-1] == 'w' {
			d *= 7
		}
	default:
		var err error
		d, err = time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("horizon %q: want 52w, 90d or a positive duration", s)
		}
	}
	weeks := int((d + week - 1) / week)
	if weeks > 520 {
		return 0, fmt.Errorf("horizon %q: at most 520 weeks", s)
	}
	return weeks, nil
}

// Week is one week of a forecast: how many certificates expire in it, as
// they are issued now and under the SC-081 schedule, in total and per
// owner.
type Week struct {
	Start        time.Time      `json:"start"`
	Total        int            `json:"total"`
	ByOwner      map[string]int `json:"by_owner"`
	Cluster      bool           `json:"cluster"`
	SC081Total   int            `json:"sc081_total"`
	SC081ByOwner map[string]int `json:"sc081_by_owner"`
	SC081Cluster bool           `json:"sc081_cluster"`
}

// Projection is the renewal rhythm of one certificate, now and once its
// next issuance is capped by the SC-081 schedule.
type Projection struct {
	Entity string          `json:"entity"`
	Chain  string          `json:"chain"`
	Owner  string          `json:"owner"`
	Trust  certcheck.Trust `json:"trust,omitempty"`
	// LifetimeDays is the certificate's lifetime as issued.
	LifetimeDays int       `json:"lifetime_days"`
	NotAfter     time.Time `json:"not_after"`
	// NextIssuance is when it must be renewed (its notAfter, or the
	// forecast's start when it has expired already).
	NextIssuance time.Time `json:"next_issuance"`
	// CappedDays is the lifetime the next issuance may have: the SC-081
	// maximum at NextIssuance for a publicly trusted certificate, the
	// current lifetime otherwise (private roots are not capped).
	CappedDays int `json:"capped_days"`
	// Renewals counts its expiries within the horizon, now and under
	// SC-081 (each renewal taking the maximum in force at its date).
	Renewals      int `json:"renewals"`
	SC081Renewals int `json:"sc081_renewals"`
}

// Forecast is the renewal work of the coming weeks.
type Forecast struct {
	Start  time.Time `json:"start"`
	Weeks  []Week    `json:"weeks"`
	Owners []string  `json:"owners"` // sorted; "" is no owner label
	// Median and SC081Median are the medians of the weekly totals; a week
	// clusters when its total is more than twice the median, and at least
	// two (one renewal is never a cluster).
	Median       float64      `json:"median"`
	SC081Median  float64      `json:"sc081_median"`
	Certificates []Projection `json:"certificates"`
	// Unknown counts the certificates behind secret references, whose
	// expiry is not known here.
	Unknown int `json:"unknown"`
}

// NewForecast forecasts weeks weeks from now for records. A certificate
// is renewed when it expires and, now, keeps its lifetime on each renewal;
// under SC-081 a publicly trusted certificate's lifetime at each renewal
// is at most certcheck.MaxLifetimeDays of that date.
func NewForecast(records []Record, now time.Time, weeks int) *Forecast {
	now = now.UTC()
	fc := &Forecast{Start: now}
	end := now.Add(time.Duration(weeks) * week)
	owners := map[string]bool{}
	for i := range weeks {
		fc.Weeks = append(fc.Weeks, Week{Start: now.Add(time.Duration(i) * week), ByOwner: map[string]int{}, SC081ByOwner: map[string]int{}})
	}
	for _, r := range records {
		if !r.Known() {
			fc.Unknown++
			continue
		}
		owners[r.Owner] = true
		life := r.NotAfter.Sub(r.NotBefore) + time.Second
		if life < 24*time.Hour {
			life = 24 * time.Hour // a forecast of hourly certificates is not one
		}
		next := r.NotAfter
		if next.Before(now) {
			next = now
		}
		p := Projection{Entity: r.Entity, Chain: r.Chain, Owner: r.Owner, Trust: r.Trust, NotAfter: r.NotAfter,
			LifetimeDays: int(life / (24 * time.Hour)), NextIssuance: next, CappedDays: int(life / (24 * time.Hour))}
		capped := func(at time.Time) time.Duration {
			if r.Trust != certcheck.TrustPublic {
				return life
			}
			if m := time.Duration(certcheck.MaxLifetimeDays(at)) * 24 * time.Hour; m > 0 && m < life {
				return m
			}
			return life
		}
		p.CappedDays = int(capped(next) / (24 * time.Hour))
		for t := next; t.Before(end); t = t.Add(life) {
			w := &fc.Weeks[int(t.Sub(now)/week)]
			w.Total++
			w.ByOwner[r.Owner]++
			p.Renewals++
		}
		for t := next; t.Before(end); t = t.Add(capped(t)) {
			w := &fc.Weeks[int(t.Sub(now)/week)]
			w.SC081Total++
			w.SC081ByOwner[r.Owner]++
			p.SC081Renewals++
		}
		fc.Certificates = append(fc.Certificates, p)
	}
	for o := range owners {
		fc.Owners = append(fc.Owners, o)
	}
	slices.Sort(fc.Owners)
	totals, sc := make([]int, weeks), make([]int, weeks)
	for i, w := range fc.Weeks {
		totals[i], sc[i] = w.Total, w.SC081Total
	}
	fc.Median, fc.SC081Median = median(totals), median(sc)
	for i := range fc.Weeks {
		w := &fc.Weeks[i]
		w.Cluster = clusters(w.Total, fc.Median)
		w.SC081Cluster = clusters(w.SC081Total, fc.SC081Median)
	}
	slices.SortFunc(fc.Certificates, func(a, b Projection) int {
		if c := a.NextIssuance.Compare(b.NextIssuance); c != 0 {
			return c
		}
		return strings.Compare(a.Entity+a.Chain, b.Entity+b.Chain)
	})
	return fc
}

func clusters(n int, median float64) bool { return n >= 2 && float64(n) > 2*median }

func median(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// ownerName shows the empty owner.
func ownerName(o string) string {
	if o == "" {
		return "(no owner)"
	}
	return o
}

// Write renders the forecast in format f: the weeks (per owner, now and
// under SC-081, clusters marked), then each certificate's projection. CSV
// writes the two tables one after the other, separated by an empty line.
func (fc *Forecast) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(fc)
	}
	weeks := &table{headers: []string{"WEEK", "STARTS", "EXPIRING"}}
	for _, o := range fc.Owners {
		weeks.headers = append(weeks.headers, ownerName(o))
	}
	weeks.headers = append(weeks.headers, "CLUSTER", "UNDER SC-081", "SC-081 CLUSTER")
	for i, wk := range fc.Weeks {
		row := []string{strconv.Itoa(i + 1), date(wk.Start), strconv.Itoa(wk.Total)}
		for _, o := range fc.Owners {
			row = append(row, strconv.Itoa(wk.ByOwner[o]))
		}
		row = append(row, mark(wk.Cluster), strconv.Itoa(wk.SC081Total), mark(wk.SC081Cluster))
		weeks.rows = append(weeks.rows, row)
	}
	certs := &table{headers: []string{"ENTITY", "CHAIN", "OWNER", "TRUST", "NOT AFTER", "LIFETIME", "NEXT ISSUANCE", "SC-081 LIFETIME", "RENEWALS", "UNDER SC-081"}}
	for _, p := range fc.Certificates {
		certs.rows = append(certs.rows, []string{p.Entity, p.Chain, ownerName(p.Owner), string(p.Trust), date(p.NotAfter),
			fmt.Sprintf("%dd", p.LifetimeDays), date(p.NextIssuance), fmt.Sprintf("%dd", p.CappedDays),
			strconv.Itoa(p.Renewals), strconv.Itoa(p.SC081Renewals)})
	}
	if f != FormatText {
		for _, t := range []*table{weeks, certs} {
			for i, h := range t.headers {
				if h == strings.ToUpper(h) {
					t.headers[i] = strings.ToLower(strings.NewReplacer(" ", "_", "-", "").Replace(h))
				}
			}
		}
	}
	var b strings.Builder
	if f == FormatMarkdown {
		fmt.Fprintf(&b, "### Renewal forecast: %d weeks from %s\n\n", len(fc.Weeks), date(fc.Start))
	} else if f == FormatText {
		fmt.Fprintf(&b, "Renewal forecast: %d weeks from %s (expiries per week, per owner; now and under SC-081)\n", len(fc.Weeks), date(fc.Start))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := weeks.write(w, f); err != nil {
		return err
	}
	b.Reset()
	if f != FormatCSV {
		b.WriteString("\n")
		b.WriteString(fc.summary(f))
		b.WriteString("\n")
	} else {
		b.WriteString("\n")
	}
	if f == FormatMarkdown {
		b.WriteString("### Per certificate\n\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return certs.write(w, f)
}

func mark(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// summary names the cluster weeks, now and under SC-081.
func (fc *Forecast) summary(f Format) string {
	var b strings.Builder
	list := func(sc bool) []string {
		var out []string
		for i, w := range fc.Weeks {
			n, c := w.Total, w.Cluster
			if sc {
				n, c = w.SC081Total, w.SC081Cluster
			}
			if c {
				out = append(out, fmt.Sprintf("week %d (%s): %d", i+1, date(w.Start), n))
			}
		}
		return out
	}
	bullet := ""
	if f == FormatMarkdown {
		bullet = "- "
	}
	for _, s := range []struct {
		name   string
		median float64
		sc     bool
	}{{"now", fc.Median, false}, {"under SC-081", fc.SC081Median, true}} {
		l := list(s.sc)
		if len(l) == 0 {
			fmt.Fprintf(&b, "%sclusters %s: none (median %g a week)\n", bullet, s.name, s.median)
			continue
		}
		fmt.Fprintf(&b, "%sclusters %s (more than twice the median of %g a week): %s\n", bullet, s.name, s.median, strings.Join(l, ", "))
	}
	if fc.Unknown > 0 {
		fmt.Fprintf(&b, "%s%d certificates behind secret references are not forecast (their expiry is not known here; use --live)\n", bullet, fc.Unknown)
	}
	return b.String()
}
