package certcheck

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"certops/internal/atomicfile"
)

// lintStoreFormat is the version of a LintStore file's layout and of what
// a lintResult holds; a change of either bumps it, so that no stale file
// is read.
const lintStoreFormat = 1

// lintStoreMagic begins a LintStore file's header line.
const lintStoreMagic = "certops-zlint-results"

// LintStore keeps the zlint results of the process's leaves in a file, so
// that a restarted daemon does not lint its unchanged leaves again (zlint
// is most of the hygiene checks' cost at a cold start). The file holds,
// per leaf, the SHA-256 of its DER, the lint set and the lints that did
// not pass with their messages: what a certificate, which is public,
// shows. It never holds a certificate or a key.
//
// The file is valid for one build: its header names the lint sets and
// the versions of Go and of every module linked in (zlint, zcrypto and
// what they use), so an upgrade starts it again empty. A public leaf's
// results are kept for the UTC day they were made on only, as in the
// process (two public lints read the clock).
//
// A LintStore is safe for concurrent use. Two processes may share a file:
// each rewrite replaces it atomically, and an append writes whole lines.
type LintStore struct {
	path string

	mu sync.Mutex // guards the fields below; held while writing
	// epoch and saved say what of the process's lint cache the file
	// holds: the first saved keys stored in that epoch.
	epoch, saved int
	// rewrite is true when the file must be written anew: absent, of
	// another build, or holding many lines that were replaced or dropped.
	rewrite bool
}

// OpenLintStore reads the results kept at path into the process's cache
// and returns the store that Save writes to. A missing file, or one of
// another build, is no error: the store starts it again. A file that
// cannot be read is an error, and the store writes it anew; a build
// without module information is an error with a store that keeps nothing.
func OpenLintStore(path string) (*LintStore, error) {
	s := &LintStore{path: path, rewrite: true}
	head, ok := lintStoreHeader()
	if !ok {
		return &LintStore{}, errors.New("zlint results are not kept: the binary has no module information")
	}
	// Until a file of this build is read, rewrite stays true: the first
	// Save writes the whole cache.
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("zlint results: %w", err)
	}
	defer f.Close()
	// Read as a stream: the file of 100,000 leaves is some 20 MB.
	br := bufio.NewReaderSize(f, 64<<10)
	first, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return s, fmt.Errorf("zlint results: %w", err)
	}
	if strings.TrimSuffix(first, "\n") != head {
		return s, nil // another build's, or empty: rewritten at the first Save
	}
	entries, lines, err := parseLintLines(br, utcDay(time.Now()))
	if err != nil {
		return s, fmt.Errorf("zlint results: %w", err)
	}
	lints.mu.Lock()
	defer lints.mu.Unlock()
	before, epoch := len(lints.m), lints.epoch
	for _, e := range entries {
		if _, ok := lints.m[e.key]; !ok {
			lints.store(e.key, e.entry)
		}
	}
	s.epoch, s.saved = lints.epoch, lints.stored()
	// What the process held before is not in the file, and a file that
	// filled the cache is not all in it: both make a new file, as do many
	// lines that were replaced or dropped.
	s.rewrite = before > 0 || lints.epoch != epoch || lines > 2*len(entries)+64
	return s, nil
}

// pending copies what Save writes from the process cache: every entry
// when the file is to be written anew (rewrite), else those stored since
// the last Save; with the cache's epoch and count of entries stored.
// s.mu is held.
func (s *LintStore) pending() (todo []parsedLine, rewrite bool, epoch, total int) {
	today := utcDay(time.Now())
	lints.mu.Lock()
	defer lints.mu.Unlock()
	epoch, total = lints.epoch, lints.stored()
	keys, kept := lints.since(s.saved)
	rewrite = s.rewrite || epoch != s.epoch || !kept // !kept: another store trimmed them
	if rewrite {
		todo = make([]parsedLine, 0, len(lints.m))
		for k := range lints.m {
			if e, _ := lints.entry(k); !k.public || e.day == today {
				todo = append(todo, parsedLine{k, e})
			}
		}
		return todo, rewrite, epoch, total
	}
	for _, k := range keys {
		e, _ := lints.entry(k)
		todo = append(todo, parsedLine{k, e})
	}
	return todo, rewrite, epoch, total
}

// Save writes to the file the results of the leaves linted since the
// last Save (or since OpenLintStore), appending them, or writing the file
// anew when it must be (atomically: a temporary file renamed over it).
// It writes nothing when nothing changed.
func (s *LintStore) Save() error {
	if s == nil || s.path == "" {
		return nil
	}
	head, _ := lintStoreHeader()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The entries are copied under the cache's lock and encoded after
	// it, so that validation is not held up meanwhile.
	todo, rewrite, epoch, total := s.pending()
	if !rewrite && len(todo) == 0 {
		return nil
	}
	var b []byte
	if rewrite {
		b = append(b, head...)
		b = append(b, '\n')
	}
	for _, l := range todo {
		b = appendLintLine(b, l.key, l.entry)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("zlint results: %w", err)
	}
	if rewrite {
		if err := atomicfile.Write(s.path, b); err != nil {
			return fmt.Errorf("zlint results: %w", err)
		}
		s.rewrite = false
	} else {
		f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			s.rewrite = true // removed meanwhile: write it anew next time
			return fmt.Errorf("zlint results: %w", err)
		}
		_, werr := f.Write(b)
		if err := errors.Join(werr, f.Close()); err != nil {
			s.rewrite = true // a partial line is skipped when read; write it anew next time
			return fmt.Errorf("zlint results: %w", err)
		}
	}
	s.epoch, s.saved = epoch, total
	lints.mu.Lock()
	if lints.epoch == epoch {
		lints.trim(total)
	}
	lints.mu.Unlock()
	return nil
}

// storedResult is a lintResult as a file line holds it.
type storedResult struct {
	Name        string     `json:"n"`
	Description string     `json:"d,omitempty"`
	Status      lintStatus `json:"s"`
	Details     string     `json:"x,omitempty"`
}

// appendLintLine appends the line of one entry: the leaf's SHA-256 in
// hex, the lint set (p public, r the RFC lints of a private leaf), the
// entry's day and its results in JSON.
func appendLintLine(b []byte, k lintKey, e lintEntry) []byte {
	b = hex.AppendEncode(b, k.sum[:])
	if k.public {
		b = append(b, " p "...)
	} else {
		b = append(b, " r "...)
	}
	b = strconv.AppendInt(b, e.day, 10)
	b = append(b, ' ')
	res := make([]storedResult, len(e.res))
	for i, r := range e.res {
		res[i] = storedResult{Name: r.name, Description: r.description, Status: r.status, Details: r.details}
	}
	j, err := json.Marshal(res)
	if err != nil {
		j = []byte("null") // not expected of strings and an int; read back as no entry
	}
	b = append(b, j...)
	return append(b, '\n')
}

type parsedLine struct {
	key   lintKey
	entry lintEntry
}

// parseLintLines reads the result lines of a file; a line that does not
// parse (the last one of an interrupted append) is skipped, as is a
// public leaf's line of a day other than today. It returns the entries
// and the number of lines, or the error of reading r.
func parseLintLines(r io.Reader, today int64) ([]parsedLine, int, error) {
	var out []parsedLine
	seen := map[string][]lintResult{}
	lines := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		f := bytes.SplitN(sc.Bytes(), []byte(" "), 4)
		if len(f) != 4 || len(f[0]) != 2*sha256.Size || len(f[1]) != 1 {
			continue
		}
		var k lintKey
		if _, err := hex.Decode(k.sum[:], f[0]); err != nil {
			continue
		}
		switch f[1][0] {
		case 'p':
			k.public = true
		case 'r':
		default:
			continue
		}
		day, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil || (k.public && day != today) || (!k.public && day != 0) {
			continue
		}
		// Most leaves of a repository share their results (none, or the
		// same warning): each distinct list is decoded once and shared,
		// as the cache's entries are read-only.
		res, ok := seen[string(f[3])]
		if !ok {
			var stored []storedResult
			if err := json.Unmarshal(f[3], &stored); err != nil || stored == nil {
				continue
			}
			for _, r := range stored {
				res = append(res, lintResult{name: r.Name, description: r.Description, status: r.Status, details: r.Details})
			}
			seen[string(f[3])] = res
		}
		out = append(out, parsedLine{k, lintEntry{day: day, res: res}})
	}
	return out, lines, sc.Err()
}

// lintStoreHeader is the header line of this build's files: the format,
// and a digest of the Go version, every module linked in and the names
// of the lints of both sets. It is false without module information.
var lintStoreHeader = sync.OnceValues(func() (string, bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", runtime.Version())
	for _, d := range info.Deps {
		fmt.Fprintf(h, "%s@%s %s\x00", d.Path, d.Version, d.Sum)
		if r := d.Replace; r != nil {
			fmt.Fprintf(h, "=> %s@%s %s\x00", r.Path, r.Version, r.Sum)
		}
	}
	pub, priv := lintSets()
	for _, set := range []lintSet{pub, priv} {
		for _, l := range set.lints {
			fmt.Fprintf(h, "%s\x00", l.Name)
		}
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%s %d %x", lintStoreMagic, lintStoreFormat, h.Sum(nil)[:16]), true
})
