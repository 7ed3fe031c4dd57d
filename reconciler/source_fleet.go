package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"certops/fleet"
	"certops/source"
)

// FleetSource is a node's source (DESIGN.md 9): it follows a fleet's head
// over NATS instead of Git, and is also the [Sink] that records what the
// node applied. Each entity becomes one file of the tree, "<name>.json",
// whose content id is its blob digest, so the reconciler validates only
// what changed. It restores the last applied manifest from its data dir
// ([source.Opener]) and serves it through NATS outages; Watch follows
// head, keeps the node's fleet record and distributes session-ticket keys.
type FleetSource struct {
	fleet   *fleet.Fleet
	node    *fleet.Node
	nodeID  string
	url     string
	log     *slog.Logger
	dataKey *fleet.DataKey
	// tickets, when set, receives the fleet's session-ticket keys.
	tickets func([][32]byte) error

	mu      sync.Mutex                 // guards fetched
	fetched map[string]*fleet.Revision // by Git revision, until applied

	applied   atomic.Pointer[fleet.Revision]
	refusalMu sync.Mutex                         // serialises the refusal bookkeeping of Fetch; guards refusal
	refused   atomic.Pointer[fleet.RefusalError] // the last refusal, until a good fetch
	refusal   *StalledError                      // what Fetch returns for refused
	refusals  sync.Map                           // fleet.Reason -> *atomic.Int64
	changed   chan struct{}                      // capacity 1: the record should be written

	treeMu    sync.Mutex // guards lastTree, lastFiles
	lastTree  *fleet.Revision
	lastFiles map[string]string // the files of lastTree's tree

	statusMu sync.Mutex // guards status, proof
	status   func() *Status
	proof    func() Proof
}

// FleetSourceOptions configure a FleetSource.
type FleetSourceOptions struct {
	Fleet *fleet.Fleet
	Node  fleet.NodeOptions
	// NodeID names the node in the fleet's records.
	NodeID string
	// URL is the --source as given, for status and the data dir record.
	URL    string
	Logger *slog.Logger
	// Tickets, when set, receives the fleet's session-ticket keys
	// (current first) when Watch starts and at every rotation by the
	// leader publisher: a gateway's [gateway.Server.SetTicketKeys]. It
	// needs Node.DataKey, which opens them. An error is logged and the
	// gateway keeps the keys it has.
	Tickets func([][32]byte) error
}

var (
	_ source.Source = (*FleetSource)(nil)
	_ source.Opener = (*FleetSource)(nil)
	_ Sink          = (*FleetSource)(nil)
)

// NewFleetSource returns the source of a fleet node.
func NewFleetSource(o FleetSourceOptions) (*FleetSource, error) {
	n, err := o.Fleet.NewNode(o.Node)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FleetSource{fleet: o.Fleet, node: n, nodeID: o.NodeID, url: o.URL, log: log, dataKey: o.Node.DataKey,
		tickets: o.Tickets, fetched: map[string]*fleet.Revision{}, changed: make(chan struct{}, 1)}, nil
}

// UseTicketKeys sets FleetSourceOptions.Tickets, for a caller that makes
// the gateway after the source. Call it before Run.
func (s *FleetSource) UseTicketKeys(set func([][32]byte) error) { s.tickets = set }

// Attach gives the source the reconciler's status and the served-state
// proof, for the node's record. Call it before Run.
func (s *FleetSource) Attach(status func() *Status, proof func() Proof) {
	s.statusMu.Lock()
	s.status, s.proof = status, proof
	s.statusMu.Unlock()
}

// String returns the source URL.
func (s *FleetSource) String() string { return s.url }

// Fetch returns the tree of the fleet's head. A manifest the node refuses
// (fleet.RefusalError: not signed by a trusted key, a blob that does not
// match its digest, a sequence not above the applied one...) is logged,
// counted and returned as a *StalledError: nothing of it is applied, the
// last applied state keeps serving, and the node waits for head to move
// rather than retrying. The same refusal seen again (head has not moved)
// is returned as the same error, neither logged nor counted again.
func (s *FleetSource) Fetch(ctx context.Context) (*source.Tree, error) {
	rev, err := s.node.Fetch(ctx)
	if err != nil {
		var re *fleet.RefusalError
		if !errors.As(err, &re) {
			return nil, err // NATS is down, nothing published yet: retryable
		}
		s.refusalMu.Lock()
		defer s.refusalMu.Unlock()
		if last := s.refused.Load(); last != nil && sameRefusal(last, re) {
			return nil, s.refusal
		}
		s.count(re.Reason)
		s.refused.Store(re)
		s.refusal = &StalledError{Phase: PhaseFetch, Err: err}
		s.log.Warn("fleet manifest refused; the last applied state keeps serving until head moves",
			"reason", re.Reason.String(), "sequence", re.Sequence, "revision", re.Revision, "err", err)
		s.notify()
		return nil, s.refusal
	}
	s.refusalMu.Lock()
	s.refused.Store(nil)
	s.refusal = nil
	s.refusalMu.Unlock()
	s.mu.Lock()
	s.fetched[rev.Revision] = rev
	s.mu.Unlock()
	return s.tree(rev), nil
}

// Open returns the tree of the manifest the data dir recorded, verified
// again, when it is revision.
func (s *FleetSource) Open(_ context.Context, revision string) (*source.Tree, error) {
	rev, err := s.node.Restore()
	if err != nil {
		return nil, err
	}
	if rev == nil || rev.Revision != revision {
		return nil, fmt.Errorf("fleet: revision %s is not in the data dir", revision)
	}
	s.mu.Lock()
	s.fetched[rev.Revision] = rev
	s.mu.Unlock()
	return s.tree(rev), nil
}

// tree turns a fleet revision into a file tree: one JSON entity file per
// entity, read (and its keys opened) on demand. The file map of the last
// tree is copied and patched with the pages that changed, rather than
// built again from every entity of the fleet.
func (s *FleetSource) tree(rev *fleet.Revision) *source.Tree {
	s.treeMu.Lock()
	var files map[string]string
	if s.lastTree != nil {
		files = maps.Clone(s.lastFiles)
		if !rev.Diff(s.lastTree,
			func(name string) { delete(files, name+".json") },
			func(name, d string) { files[name+".json"] = d }) {
			files = nil
		}
	}
	if files == nil {
		files = make(map[string]string, rev.Entities)
		for name, d := range rev.Blobs() {
			files[name+".json"] = d
		}
	}
	s.lastTree, s.lastFiles = rev, files // never modified again: the tree shares it
	s.treeMu.Unlock()
	return source.NewTree(rev.Revision, files, func(p string) ([]byte, error) {
		e, err := rev.Entity(strings.TrimSuffix(p, ".json"))
		if err != nil {
			return nil, err
		}
		return json.Marshal(e.Doc)
	})
}

// Apply records that the gateway serves rev: its manifest becomes the
// node's floor and the data dir's restore point.
func (s *FleetSource) Apply(_ context.Context, rev *AppliedRevision) error {
	s.mu.Lock()
	fr := s.fetched[rev.Revision]
	clear(s.fetched)
	s.mu.Unlock()
	if fr == nil {
		return nil // not a fleet revision (cannot happen with this source)
	}
	if err := s.node.Applied(fr); err != nil {
		return err
	}
	s.applied.Store(fr)
	s.statusMu.Lock()
	proof := s.proof
	s.statusMu.Unlock()
	// With a proof, the proof of rev (started by the prover, a sink
	// before this one) calls ProofChanged when it ends, and the record is
	// written once, with the revision and whether it was verified: one
	// record write per change rather than two, from every node of the
	// fleet at once. Unless that proof has ended already; the periodic
	// refresh writes the record meanwhile if the proof takes long.
	if proof == nil || proof().Revision == rev.Revision {
		s.notify()
	}
	return nil
}

func (s *FleetSource) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Watch follows head, keeps the node's record and the ticket keys until
// ctx ends.
func (s *FleetSource) Watch(ctx context.Context, trigger func()) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.fleet.KeepRecord(ctx, s.changed, s.Record) })
	if s.tickets != nil && s.dataKey != nil {
		wg.Go(func() {
			s.fleet.WatchTicketKeys(ctx, s.dataKey, func(tk *fleet.TicketKeys) {
				if err := s.tickets(tk.Keys); err != nil {
					s.log.Warn("cannot use the fleet's session-ticket keys; the gateway keeps its own", "err", err)
					return
				}
				s.log.Info("using the fleet's session-ticket keys", "rotated", tk.Rotated, "keys", len(tk.Keys))
			})
		})
	}
	err := s.node.Watch(ctx, trigger)
	wg.Wait()
	return err
}

// ProofChanged tells the source that a new proof result should be
// recorded.
func (s *FleetSource) ProofChanged() { s.notify() }

// Record is the node's fleet record now.
func (s *FleetSource) Record() fleet.Record {
	rec := fleet.Record{Node: s.nodeID, Time: time.Now().UTC(), Errors: []string{}}
	if a := s.applied.Load(); a != nil {
		rec.Revision, rec.Sequence = a.Revision, a.Sequence
	}
	s.statusMu.Lock()
	status, proof := s.status, s.proof
	s.statusMu.Unlock()
	if status != nil {
		if st := status(); st != nil && st.LastAttempt != nil {
			rec.Result = string(st.LastAttempt.Result)
			for _, p := range st.LastAttempt.Errors {
				rec.Errors = append(rec.Errors, p.Error())
			}
		}
	}
	if re := s.refused.Load(); re != nil {
		rec.Result = "refused"
		rec.Errors = append(rec.Errors, re.Error())
	}
	if proof != nil && rec.Sequence != 0 {
		p := proof()
		rec.Verified = p.Verified && p.Revision == rec.Revision
		for _, m := range p.Mismatches {
			rec.Errors = append(rec.Errors, fmt.Sprintf("entity %s: %s served %s, want %s", m.Entity, m.SNI, m.Got, m.Want))
		}
	}
	return rec
}

// sameRefusal reports whether b refuses what a refused: the same
// manifest, for the same reason.
func sameRefusal(a, b *fleet.RefusalError) bool {
	return a.Reason == b.Reason && a.Sequence == b.Sequence && a.Revision == b.Revision && a.Error() == b.Error()
}

// Refusals returns how many manifests were refused, by reason: every
// reason a node can refuse for, zero or more. A manifest is counted once
// however often it is fetched again. Safe for concurrent use.
func (s *FleetSource) Refusals() map[fleet.Reason]int64 {
	out := map[fleet.Reason]int64{}
	for _, r := range fleet.Reasons() {
		out[r] = 0
	}
	s.refusals.Range(func(k, v any) bool {
		out[k.(fleet.Reason)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (s *FleetSource) count(r fleet.Reason) {
	v, _ := s.refusals.LoadOrStore(r, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// FleetInfo is the fleet part of a node's status.
type FleetInfo struct {
	Name              string `json:"name"`
	Sequence          uint64 `json:"sequence"`
	PublisherRevision string `json:"publisher_revision"`
}

// Info returns the fleet part of the node's status.
func (s *FleetSource) Info() FleetInfo {
	fi := FleetInfo{Name: s.fleet.Name()}
	if a := s.applied.Load(); a != nil {
		fi.Sequence, fi.PublisherRevision = a.Sequence, a.Revision
	}
	return fi
}
