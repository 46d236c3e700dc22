package failover

// The decision record: which node is active, since which epoch, and why.
// It is kept behind Store so that a store shared by several tandem
// instances can replace the file later.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Decision is tandem's record of who takes writes.
type Decision struct {
	// Active is the node that takes traffic.
	Active string `json:"active"`
	// Epoch increases by one with every change of Active.
	Epoch uint64 `json:"epoch"`
	// Time is when the decision was made.
	Time time.Time `json:"time"`
	// Reason says why, for people.
	Reason string `json:"reason"`
	// PromotedAt is the candidate's executed GTID position when it was
	// promoted: a node that later shows transactions of its own beyond
	// it has errant transactions.
	PromotedAt string `json:"promoted_at,omitempty"`
	// PendingRejoin: at the promotion, the active's replication from its
	// peer was stopped; it is restarted when the peer is back as a clean
	// passive.
	PendingRejoin bool `json:"pending_rejoin,omitempty"`
	// Unsynced maps a node name to since when and why it may lack writes
	// the active acknowledged: never promoted automatically until it has
	// caught up with semi-sync on.
	Unsynced map[string]string `json:"unsynced,omitempty"`
	// Promoting journals a promotion of that node in progress, saved
	// before its first step: a restart finding it undoes the steps
	// (replication restarted, semi-sync source restored to
	// PromotingSemiSync).
	Promoting         string `json:"promoting,omitempty"`
	PromotingSemiSync bool   `json:"promoting_semi_sync,omitempty"`
	// Opened: Active has been made writable after every tandem
	// acknowledged this epoch, so followers may route to it (several
	// tandems only; a single tandem saves it true).
	Opened bool `json:"opened,omitempty"`
	// Maintenance lists nodes an operator put in maintenance: never
	// promoted.
	Maintenance map[string]bool `json:"maintenance,omitempty"`
	// Excluded maps a node name to why it must never be promoted
	// (errant transactions) until an operator clears it.
	Excluded map[string]string `json:"excluded,omitempty"`
}

// Store keeps the decision across restarts. Implementations must make Save
// durable before returning: a promotion is acted on only after it.
type Store interface {
	// Load returns the saved decision; ok is false when none was saved.
	Load() (d Decision, ok bool, err error)
	// Save replaces the saved decision.
	Save(d Decision) error
}

// FileStore keeps the decision in a JSON file, replaced atomically.
type FileStore struct {
	Path string
}

// Load reads the file.
func (f *FileStore) Load() (Decision, bool, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Decision{}, false, nil
	}
	if err != nil {
		return Decision{}, false, err
	}
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil {
		return Decision{}, false, fmt.Errorf("%s: %w", f.Path, err)
	}
	if d.Active == "" {
		return Decision{}, false, fmt.Errorf("%s: no active node recorded", f.Path)
	}
	return d, true, nil
}

// Save writes the file: temporary file, fsync, rename, fsync the directory.
func (f *FileStore) Save(d Decision) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tandem-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	dh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dh.Close()
	return dh.Sync()
}
