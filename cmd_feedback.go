package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"certops/commitstatus"
	"certops/notify"
	"certops/reconciler"
	"certops/schema"
	"certops/trust"
)

// trustFlags are --verify-signatures and --trusted-keys, on run and diff.
type trustFlags struct {
	mode trust.Mode
	keys string
}

func addTrustFlags(fl *pflag.FlagSet, f *trustFlags) {
	fl.Var(&f.mode, "verify-signatures", "apply only revisions whose commit (head), annotated tag (tag) or both (tag-and-head) is signed by a trusted key")
	fl.StringVar(&f.keys, "trusted-keys", "", "folder of trusted keys for --verify-signatures: *.asc (armored OpenPGP) and *.sshpub (SSH, one per line)")
}

// signatures checks the flags and loads the keys.
func (f trustFlags) signatures() (reconciler.Signatures, error) {
	switch {
	case f.mode == trust.ModeOff && f.keys == "":
		return reconciler.Signatures{}, nil
	case f.mode == trust.ModeOff:
		return reconciler.Signatures{}, errors.New("--trusted-keys goes with --verify-signatures head|tag|tag-and-head")
	case f.keys == "":
		return reconciler.Signatures{}, errors.New("--verify-signatures needs --trusted-keys DIR")
	}
	keys, err := trust.LoadDir(f.keys)
	if err != nil {
		return reconciler.Signatures{}, fmt.Errorf("--trusted-keys: %w", err)
	}
	return reconciler.Signatures{Mode: f.mode, Keys: keys}, nil
}

// feedbackFlags are the notification and commit-status flags of run.
type feedbackFlags struct {
	notify                []string
	notifyConfig          string
	commitStatus          string
	commitStatusTokenFile string
	commitStatusRepo      string
	commitStatusAPI       string
	commitStatusName      string
}

func addFeedbackFlags(fl *pflag.FlagSet, f *feedbackFlags) {
	fl.StringArrayVar(&f.notify, "notify", nil, "send events to this URL (repeatable): Slack, Teams, Alertmanager or a JSON webhook, chosen by a slack+/teams+/alertmanager+/webhook+ scheme prefix, ?provider=, or the host; ?events=a,b filters, ?secret_file=F signs webhooks")
	fl.StringVar(&f.notifyConfig, "notify-config", "", "YAML file of notification providers with event filters")
	fl.StringVar(&f.commitStatus, "commit-status", "", "set a commit status on each applied or refused commit: github or gitlab")
	fl.StringVar(&f.commitStatusTokenFile, "commit-status-token-file", "", "file holding the GitHub or GitLab token for --commit-status")
	fl.StringVar(&f.commitStatusRepo, "commit-status-repo", "", "owner/repo (GitHub) or project path or id (GitLab) (default: from --source)")
	fl.StringVar(&f.commitStatusAPI, "commit-status-api", "", "API root for --commit-status (default https://api.github.com or https://gitlab.com/api/v4)")
	fl.StringVar(&f.commitStatusName, "commit-status-name", "", "the status is named certops/<name> (default: certops)")
}

// feedback tells people and the Git host what each reconcile did. It is
// fed by the reconciler's Observe hook, which runs once per reconcile, one
// at a time; all it does there is queue (it never blocks a reconcile).
type feedback struct {
	log      *slog.Logger
	notifier *notify.Notifier
	reporter *commitstatus.Reporter
	name     string // titles notifications and labels alerts: the host name

	mu       sync.Mutex      // guards the fields below
	last     string          // result and revision of the last notified attempt
	problem  bool            // the last attempt was stalled or failed
	degraded map[string]bool // entities notified as degraded

	// fleet is set on a publisher: a commit's success is the fleet's
	// convergence (converged), not the publisher's own apply.
	fleet bool
}

// newFeedback builds the notifier and the commit-status reporter of the
// flags; sourceURL is --source, for the repository of commit statuses.
// It returns nil when no flag asks for feedback.
func newFeedback(f feedbackFlags, sourceURL string, log *slog.Logger) (*feedback, error) {
	var targets []notify.Target
	for _, raw := range f.notify {
		t, err := notify.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("--notify: %w", err)
		}
		targets = append(targets, t)
	}
	if f.notifyConfig != "" {
		ts, err := notify.LoadConfig(f.notifyConfig)
		if err != nil {
			return nil, fmt.Errorf("--notify-config: %w", err)
		}
		targets = append(targets, ts...)
	}
	// Notifications name the daemon by its host, so that the nodes of a
	// pull-mode fleet raise distinct alerts; "certops" when unknown.
	host, _ := os.Hostname()
	fb := &feedback{log: log, name: host, degraded: map[string]bool{}}
	if len(targets) > 0 {
		fb.notifier = notify.New(notify.Options{Targets: targets, Logger: log})
		for _, t := range targets {
			log.Info("notifications on", "provider", t.Provider.String(), "events", fmt.Sprint(t.Events))
		}
	}
	if f.commitStatus != "" {
		p, err := commitStatusPoster(f, sourceURL)
		if err != nil {
			return nil, err
		}
		fb.reporter = commitstatus.NewReporter(p, commitstatus.DefaultEvery, log)
		log.Info("commit statuses on", "poster", p.String(), "context", commitstatus.Context(f.commitStatusName))
	} else if f.commitStatusTokenFile != "" || f.commitStatusRepo != "" || f.commitStatusAPI != "" {
		return nil, errors.New("--commit-status-token-file, --commit-status-repo and --commit-status-api go with --commit-status github|gitlab")
	}
	if fb.notifier == nil && fb.reporter == nil {
		return nil, nil
	}
	return fb, nil
}

func commitStatusPoster(f feedbackFlags, sourceURL string) (commitstatus.Poster, error) {
	if f.commitStatusTokenFile == "" {
		return nil, errors.New("--commit-status needs --commit-status-token-file")
	}
	b, err := os.ReadFile(f.commitStatusTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--commit-status-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return nil, fmt.Errorf("--commit-status-token-file %s: empty", f.commitStatusTokenFile)
	}
	repo := f.commitStatusRepo
	if repo == "" {
		if repo, err = commitstatus.RepoFromURL(sourceURL); err != nil {
			return nil, fmt.Errorf("--commit-status: %w", err)
		}
	}
	ctxName := commitstatus.Context(f.commitStatusName)
	switch f.commitStatus {
	case "github":
		owner, name, ok := strings.Cut(repo, "/")
		if !ok || strings.Contains(name, "/") {
			return nil, fmt.Errorf("--commit-status-repo: %q is not owner/repo", repo)
		}
		return commitstatus.NewGitHub(f.commitStatusAPI, owner, name, token, ctxName, nil), nil
	case "gitlab":
		return commitstatus.NewGitLab(f.commitStatusAPI, repo, token, ctxName, nil), nil
	}
	return nil, fmt.Errorf("--commit-status: %q is not github or gitlab", f.commitStatus)
}

// run posts commit statuses until ctx ends, then gives queued
// notifications a few seconds to leave.
func (fb *feedback) run(ctx context.Context) error {
	if fb.reporter != nil {
		fb.reporter.Run(ctx)
	} else {
		<-ctx.Done()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fb.notifier.Shutdown(shutdown); err != nil {
		fb.log.Warn("notifications still queued at shutdown were dropped", "err", err)
	}
	return nil
}

// observe turns the outcome of a reconcile into notifications and a
// commit status.
func (fb *feedback) observe(st *reconciler.Status) {
	att := st.LastAttempt
	if fb == nil || att == nil {
		return
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	base := notify.Message{Name: fb.name, Source: st.Source, Revision: att.Revision, Time: att.Time}
	summary := ""
	if st.Plan != nil {
		summary = st.Plan.String()
	}
	key := att.Result.String() + " " + att.Revision
	changed := key != fb.last
	switch att.Result {
	case reconciler.ResultApplied, reconciler.ResultUnchanged:
		if att.Result == reconciler.ResultApplied && changed {
			m := base
			m.Event, m.Summary = notify.EventApplied, summary
			fb.notifier.Notify(m)
		}
		if fb.problem {
			m := base
			m.Event, m.Summary = notify.EventRecovered, "serving "+att.Revision
			fb.notifier.Notify(m)
		}
		fb.problem = false
		if st.Applied != nil && commitID(st.Applied.ID) && !fb.fleet {
			fb.reporter.Report(commitstatus.Status{SHA: st.Applied.ID, State: commitstatus.StateSuccess, Description: summary})
		}
	case reconciler.ResultStalled, reconciler.ResultFailed:
		problems := problemsOf(att.Errors)
		if changed {
			m := base
			m.Event, m.Problems = notify.EventStalled, problems
			m.Summary = fmt.Sprintf("revision refused (%d problems); the last applied revision keeps serving", len(problems))
			if att.Result == reconciler.ResultFailed {
				m.Event, m.Summary = notify.EventFailed, "reconcile failed; retrying with backoff"
			}
			fb.notifier.Notify(m)
		}
		fb.problem = true
		if att.Result == reconciler.ResultStalled && commitID(att.Revision) {
			first := "refused"
			if len(problems) > 0 {
				first = problems[0].String()
			}
			fb.reporter.Report(commitstatus.Status{SHA: att.Revision, State: commitstatus.StateFailure, Description: first})
		}
	}
	fb.last = key

	now := map[string]bool{}
	for _, d := range st.Degraded {
		now[d.Entity] = true
		if !fb.degraded[d.Entity] {
			m := base
			m.Event, m.Entity, m.Summary = notify.EventDegraded, d.Entity, d.Reason
			fb.notifier.Notify(m)
		}
	}
	for e := range fb.degraded {
		if !now[e] {
			m := base
			m.Event, m.Entity, m.Summary = notify.EventRecovered, e, "fresh material served again"
			fb.notifier.Notify(m)
		}
	}
	fb.degraded = now

	// Every reconcile reports what is in the warning window; the notifier
	// sends one notice per certificate per day.
	for _, e := range st.Expiring {
		m := base
		m.Event, m.Entity, m.NotAfter = notify.EventExpiring, e.Entity, e.NotAfter
		m.Certificate = fmt.Sprintf("chain %d %s %s", e.Chain, e.Subject, e.NotAfter.UTC().Format(time.RFC3339))
		m.Summary = fmt.Sprintf("%s (chain %d, %s) expires in %s", e.Entity, e.Chain, e.Subject, time.Until(e.NotAfter).Round(time.Hour))
		fb.notifier.Notify(m)
	}
}

// converged sets the commit status of a fleet's head revision: pending
// with "applied on N/M nodes" until all live nodes serve it, then success.
func (fb *feedback) converged(revision string, converged, total int) {
	if fb == nil || !commitID(revision) {
		return
	}
	state := commitstatus.StatePending
	if total > 0 && converged == total {
		state = commitstatus.StateSuccess
	}
	fb.reporter.Report(commitstatus.Status{SHA: revision, State: state, Description: commitstatus.Convergence(converged, total)})
}

// proved sends a verified-mismatch event for each name that a loopback
// handshake after an apply found serving another leaf than the applied
// one. The notifier suppresses repeats of the same mismatch.
func (fb *feedback) proved(p reconciler.Proof) {
	if fb == nil || fb.notifier == nil || p.Verified {
		return
	}
	for _, mm := range p.Mismatches {
		fb.notifier.Notify(notify.Message{
			Event: notify.EventVerifiedMismatch, Name: fb.name, Revision: p.Revision, Entity: mm.Entity,
			Certificate: mm.Want, Time: time.Now(),
			Summary: fmt.Sprintf("%s: %s should serve %s but served %s", mm.Entity, mm.SNI, mm.Want, mm.Got),
		})
	}
}

func problemsOf(ps schema.ErrorList) []notify.Problem {
	out := make([]notify.Problem, 0, len(ps))
	for _, p := range ps {
		if p.Severity == schema.SeverityWarning {
			continue
		}
		out = append(out, notify.Problem{File: p.File, Line: p.Line, Column: p.Col, Field: p.Field, Message: p.Msg})
	}
	return out
}

// commitID reports whether rev is a Git commit id (a directory source's
// revisions are digests: nothing to set a status on).
func commitID(rev string) bool {
	if len(rev) != 40 && len(rev) != 64 {
		return false
	}
	return strings.Trim(rev, "0123456789abcdef") == ""
}
