package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
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
	f, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("data dir: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("data dir: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}
