package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"certops/internal/atomicfile"
)

// DefaultDataDir returns the default --data-dir: $XDG_STATE_HOME/certops,
// else ~/.local/state/certops.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "certops")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "certops")
	}
	return filepath.Join(home, ".local", "state", "certops")
}

// stateFile is the record of the last applied revision in the data dir.
// It names a revision only: nothing secret is ever written there.
const stateFile = "applied.json"

type savedState struct {
	Source   string    `json:"source"`
	Revision string    `json:"revision"`
	Time     time.Time `json:"time"`
}

// loadState reads the last applied revision; a missing file is no error.
func loadState(dir string) (*savedState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("data dir: %s: %w", stateFile, err)
	}
	return &s, nil
}

// saveState records the last applied revision atomically: a temporary file
// renamed over the old one, so a crash leaves the old or the new record,
// never half of one.
func saveState(dir string, s savedState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteSynced(filepath.Join(dir, stateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// serving says what the gateway serves after a failed or refused attempt,
// for log lines: after a data-dir fault at start (a corrupt applied.json,
// a clone that cannot be read) nothing may be served at all, and the log
// must not claim otherwise. The caller holds sem.
func (r *Reconciler) serving() string {
	if r.applied == nil {
		return "nothing is served until a revision is applied"
	}
	return "the last applied state keeps serving"
}

// lockFile is the file in the data dir that the daemon using it locks.
const lockFile = "lock"

// DataDirInUseError is the error of LockDataDir when another process holds
// the data dir.
type DataDirInUseError struct {
	Dir string
	PID string // as the holder wrote it; "" when unknown
}

func (e *DataDirInUseError) Error() string {
	holder := "another certops daemon"
	if e.PID != "" {
		holder += " (pid " + e.PID + ")"
	}
	return fmt.Sprintf("data dir %s is in use by %s: two daemons must not share a clone and its record; give each its own --data-dir", e.Dir, holder)
}

// DataDirLock is the exclusive lock a daemon holds on its data dir for as
// long as it runs (DESIGN.md 4.1). The operating system releases it when
// the process ends, however it ends.
type DataDirLock struct {
	f *os.File
}

// LockDataDir creates dir if needed and takes the exclusive lock on it
// without waiting: a *DataDirInUseError when another process holds it.
// The lock file holds the holder's pid, for that message.
func LockDataDir(dir string) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := lockExclusive(f); err != nil {
		pid, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &DataDirInUseError{Dir: dir, PID: strings.TrimSpace(string(pid))}
		}
		return nil, fmt.Errorf("data dir: lock %s: %w", p, err)
	}
	// Best effort: the pid only improves the message of a second daemon.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DataDirLock{f: f}, nil
}

// Close releases the lock.
func (l *DataDirLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.f.Close()
}
