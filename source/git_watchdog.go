package source

// Fetch bounding (issue 16 item 2). Every Git fetch runs under the run's
// context and under a watchdog: a fetch that makes no progress for
// GitOptions.StallTimeout is cancelled with a *FetchStalledError as the
// cause. Progress is a pack or ref-advertisement byte received, over any
// transport: each go-git transport is wrapped (watchedTransport) so that
// the bytes of an upload-pack answer pass through a counter.
//
// The wrapper also fixes the wedge the issue found with file://. go-git's
// fetch defers the close of the pack reader; for file:// that close waits
// for the git-upload-pack child, which, when the fetch stopped reading
// early (a full disk made storing the pack fail), is blocked writing the
// rest of the pack into a pipe nobody reads: the close, the fetch and the
// reconciler waited for ever, and no context could help because the wait
// is exec.Cmd.Wait. Closing a pack that was not read to its end now
// cancels the session's context first and reads once more, which makes
// go-git's session kill its child process (and, for network transports,
// drop the connection) before it waits.

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// DefaultFetchStallTimeout is how long a fetch may go without progress
// unless GitOptions.StallTimeout says otherwise (--fetch-stall-timeout).
const DefaultFetchStallTimeout = 60 * time.Second

// FetchStalledError is the cause of a fetch aborted by its watchdog.
type FetchStalledError struct {
	// Timeout is the stall timeout that passed without progress.
	Timeout time.Duration
}

func (e *FetchStalledError) Error() string {
	return fmt.Sprintf("no progress for %s: fetch aborted (--fetch-stall-timeout)", e.Timeout)
}

// fetchWatchdog cancels a fetch's context when no progress was reported
// for timeout. Its methods are safe for concurrent use.
type fetchWatchdog struct {
	timeout time.Duration
	last    atomic.Int64 // time of the last progress, Unix nanoseconds
	cancel  context.CancelCauseFunc
	stopped chan struct{}
	wg      sync.WaitGroup
}

type watchdogKey struct{}

// startWatchdog returns ctx with a watchdog that cancels it after timeout
// without progress (zero or less: DefaultFetchStallTimeout). Call stop
// when the fetch returns.
func startWatchdog(ctx context.Context, timeout time.Duration) (context.Context, *fetchWatchdog) {
	if timeout <= 0 {
		timeout = DefaultFetchStallTimeout
	}
	w := &fetchWatchdog{timeout: timeout, stopped: make(chan struct{})}
	ctx, w.cancel = context.WithCancelCause(ctx)
	w.progress()
	tick := max(timeout/20, time.Millisecond)
	w.wg.Go(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-w.stopped:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, w.last.Load())) >= timeout {
					w.cancel(&FetchStalledError{Timeout: timeout})
					return
				}
			}
		}
	})
	return context.WithValue(ctx, watchdogKey{}, w), w
}

// progress records that the fetch moved forward. A nil watchdog ignores it.
func (w *fetchWatchdog) progress() {
	if w != nil {
		w.last.Store(time.Now().UnixNano())
	}
}

// stop ends the watchdog and returns the stall that aborted the fetch, or
// nil.
func (w *fetchWatchdog) stop(ctx context.Context) *FetchStalledError {
	close(w.stopped)
	w.wg.Wait()
	stall, _ := context.Cause(ctx).(*FetchStalledError)
	w.cancel(nil)
	return stall
}

func watchdogFrom(ctx context.Context) *fetchWatchdog {
	w, _ := ctx.Value(watchdogKey{}).(*fetchWatchdog)
	return w
}

func init() {
	// go-git picks a transport by URL scheme from this process-wide table;
	// this package is the only one that imports go-git (STYLE.md).
	for scheme, t := range client.Protocols {
		if _, done := t.(watchedTransport); !done {
			client.InstallProtocol(scheme, watchedTransport{t})
		}
	}
}

// watchedTransport reports the progress of its upload-pack sessions to the
// watchdog of the context they run with, and kills what serves a pack that
// is closed before its end.
type watchedTransport struct{ transport.Transport }

func (t watchedTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	s, err := t.Transport.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return &watchedSession{UploadPackSession: s}, nil
}

type watchedSession struct{ transport.UploadPackSession }

func (s *watchedSession) AdvertisedReferencesContext(ctx context.Context) (*packp.AdvRefs, error) {
	ar, err := s.UploadPackSession.AdvertisedReferencesContext(ctx)
	watchdogFrom(ctx).progress()
	return ar, err
}

func (s *watchedSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	sctx, cancel := context.WithCancel(ctx)
	res, err := s.UploadPackSession.UploadPack(sctx, req)
	if err != nil {
		cancel()
		return res, err
	}
	wd := watchdogFrom(ctx)
	wd.progress()
	out := packp.NewUploadPackResponseWithPackfile(req, &watchedPack{res: res, wd: wd, cancel: cancel})
	out.ShallowUpdate, out.ServerResponse = res.ShallowUpdate, res.ServerResponse
	return out, nil
}

// watchedPack is the pack stream of an upload-pack answer.
type watchedPack struct {
	res    *packp.UploadPackResponse
	wd     *fetchWatchdog
	cancel context.CancelFunc // of the session's context
	eof    bool
}

func (p *watchedPack) Read(b []byte) (int, error) {
	n, err := p.res.Read(b)
	if n > 0 {
		p.wd.progress()
	}
	if err == io.EOF {
		p.eof = true
	}
	return n, err
}

// Close ends the pack. When it was not read to its end, the server may be
// blocked writing the rest: cancelling the session's context makes the
// next read fail, and go-git answers a failed read by killing the session
// (the git-upload-pack child of file://, the connection otherwise). Reads
// are repeated because buffered bytes are served before the failure.
func (p *watchedPack) Close() error {
	if !p.eof {
		p.cancel()
		buf := make([]byte, 32<<10)
		for {
			if _, err := p.res.Read(buf); err != nil {
				break
			}
		}
	}
	err := p.res.Close()
	p.cancel()
	return err
}
