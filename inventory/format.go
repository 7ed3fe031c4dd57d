package inventory

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Format is an output format of an inventory or a forecast.
type Format string

// Formats (`certops inventory --format`).
const (
	FormatText     Format = "text"
	FormatJSON     Format = "json"
	FormatCSV      Format = "csv"
	FormatMarkdown Format = "markdown"
)

// String returns the format's name.
func (f Format) String() string { return string(f) }

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatCSV, FormatMarkdown:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, json, csv or markdown)", s)
}

// table is rows of cells under headers, rendered by every format but JSON.
type table struct {
	headers []string
	rows    [][]string
}

func (t *table) write(w io.Writer, f Format) error {
	switch f {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(t.headers); err != nil {
			return err
		}
		if err := cw.WriteAll(t.rows); err != nil {
			return err
		}
		return cw.Error()
	case FormatMarkdown:
		var b strings.Builder
		b.WriteString("| " + strings.Join(mdCells(t.headers), " | ") + " |\n")
		b.WriteString("|" + strings.Repeat(" --- |", len(t.headers)) + "\n")
		for _, r := range t.rows {
			b.WriteString("| " + strings.Join(mdCells(r), " | ") + " |\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.headers, "\t"))
	for _, r := range t.rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.NewReplacer("|", `\|`, "\n", " ").Replace(c)
	}
	return out
}

// WriteOptions tune Write.
type WriteOptions struct {
	// Source names what was inventoried (a folder, a daemon URL, a fleet).
	Source string
	Now    time.Time
	// Fleet, for the inventory of a fleet, describes its head manifest.
	Fleet *FleetInfo
}

// FleetInfo describes the fleet manifest an inventory was read from
// (`certops inventory --fleet`), and the live nodes that serve it.
type FleetInfo struct {
	Name     string    `json:"name"`
	Revision string    `json:"revision"` // the Git revision the publisher followed
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	Signer   string    `json:"signer,omitempty"`
	// Verified is true when the manifest's signature was checked against
	// a trusted key (--trusted-key).
	Verified bool `json:"verified"`
	// Serving are the live nodes that applied and verified this manifest
	// (or a later one) out of Live; nil when the node records were not
	// read.
	Serving []string `json:"serving"`
	Live    int      `json:"live"`
}

// jsonInventory is the JSON form of an inventory.
type jsonInventory struct {
	Source       string     `json:"source"`
	Generated    time.Time  `json:"generated"`
	Fleet        *FleetInfo `json:"fleet,omitempty"`
	Certificates []Record   `json:"certificates"`
}

// Write renders records in format f: a table of one row per certificate
// (text, CSV, Markdown) or a JSON document. Nothing in a record is secret.
func Write(w io.Writer, records []Record, f Format, opts WriteOptions) error {
	if f == FormatJSON {
		if records == nil {
			records = []Record{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonInventory{Source: opts.Source, Generated: opts.Now.UTC(), Fleet: opts.Fleet, Certificates: records})
	}
	t := &table{headers: []string{"ENTITY", "CHAIN", "SNIS", "FILE", "ISSUER", "SUBJECT", "SERIAL", "KEY", "NOT BEFORE", "NOT AFTER", "DAYS LEFT", "TRUST", "OWNER", "LABELS", "COMMIT"}}
	if f != FormatText {
		for i, h := range t.headers {
			t.headers[i] = strings.ToLower(strings.ReplaceAll(h, " ", "_"))
		}
	}
	for _, r := range records {
		row := []string{r.Entity, r.Chain, strings.Join(r.SNIs, " "), fileLine(r), r.Issuer, r.Subject, r.Serial, r.Key(),
			date(r.NotBefore), date(r.NotAfter), "", string(r.Trust), r.Owner, labels(r.Labels), short(r.Commit, f)}
		if r.Known() {
			row[10] = strconv.Itoa(r.DaysLeft)
		} else if r.CertRef != "" {
			row[5] = r.CertRef
		}
		t.rows = append(t.rows, row)
	}
	if err := t.write(w, f); err != nil {
		return err
	}
	if f == FormatText {
		if _, err := fmt.Fprintf(w, "%d certificates in %s\n", len(records), opts.Source); err != nil {
			return err
		}
		if fl := opts.Fleet; fl != nil {
			return fl.writeText(w)
		}
	}
	return nil
}

// writeText says which manifest a fleet inventory describes and who
// serves it.
func (fl *FleetInfo) writeText(w io.Writer) error {
	sig := "signature not checked (no --trusted-key)"
	if fl.Verified {
		sig = "signed by " + fl.Signer + ", verified"
	}
	if _, err := fmt.Fprintf(w, "fleet %s: revision %s, manifest %d, published %s, %s\n",
		fl.Name, fl.Revision, fl.Sequence, fl.Time.UTC().Format(time.RFC3339), sig); err != nil {
		return err
	}
	if fl.Serving == nil {
		return nil
	}
	names := ""
	if len(fl.Serving) > 0 {
		names = ": " + strings.Join(fl.Serving, ", ")
	}
	_, err := fmt.Fprintf(w, "served and verified by %d of %d live nodes%s\n", len(fl.Serving), fl.Live, names)
	return err
}

func fileLine(r Record) string {
	if r.Line > 0 {
		return r.File + ":" + strconv.Itoa(r.Line)
	}
	return r.File
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

func labels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

// short abbreviates a commit id for people (text); CSV and Markdown keep it
// whole for tools and links.
func short(commit string, f Format) string {
	if f == FormatText && len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
