package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"certops/plan"
	"certops/reconciler"
)

// Reconciler is the daemon as the admin API sees it; *reconciler.Reconciler
// implements it.
type Reconciler interface {
	// Trigger asks for a reconcile soon; it never blocks.
	Trigger()
	// ReconcileNow runs a reconcile (or joins the one running) and
	// returns its attempt.
	ReconcileNow(ctx context.Context) (*reconciler.Attempt, error)
	// Ready reports whether a revision has been applied.
	Ready() bool
	// Status returns the current status snapshot.
	Status() *reconciler.Status
	// Entities describes the entities being served; never a key.
	Entities() []plan.EntityInfo
}

var _ Reconciler = (*reconciler.Reconciler)(nil)

// Describer is a Reconciler that also gives its descriptions packed
// ([reconciler.Reconciler.Descriptions]): a metrics scrape or the lookup
// of one entity then unpacks only what it reads, instead of every entity.
type Describer interface {
	Descriptions() *plan.Set
}

var _ Describer = (*reconciler.Reconciler)(nil)

// Options configure a Server.
type Options struct {
	// Reconciler is the daemon whose state is served. Required.
	Reconciler Reconciler
	// Metrics, when non-nil, is served on /metrics and counts webhook
	// requests; it also exports the reconciler's state at every scrape.
	Metrics *Metrics
	// Token is the bearer token of the mutating endpoints (see
	// [CheckAddress]); empty means none is asked for.
	Token []byte
	// WebhookSecret signs (GitHub, generic) or is (GitLab) the secret of
	// push webhooks; empty disables the webhook endpoints (404).
	WebhookSecret []byte
	// Ref is the followed ref as --ref gives it (branch, tag or full ref);
	// pushes to other refs are acknowledged and ignored. "" follows the
	// default branch that GitHub and GitLab name in their payloads, and
	// every push when the payload names none.
	Ref string
	// StatusFields, when set, adds top-level fields to the answer of
	// GET /api/v1/status (a fleet node's "fleet", a publisher's "role" and
	// "published"). It is called once per request; a field that the status
	// document already has is not replaced.
	StatusFields func() map[string]any
	// Routes, when set, adds endpoints to the admin listener (not to the
	// webhook listener): a pattern as [http.ServeMux] reads it, such as
	// "GET /examples/ca.crl", to its handler. They are served without the
	// token, so they must not change anything; a pattern that conflicts
	// with the API's own panics in Handler, as ServeMux.Handle does. The
	// embedded example serves its demo CRL this way.
	Routes map[string]http.Handler
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is the admin API of the daemon. Its handlers are safe for
// concurrent use; it holds no state of its own beyond its options.
type Server struct {
	opts    Options
	rec     Reconciler
	metrics *Metrics // never nil: a private one when Options.Metrics is nil
	log     *slog.Logger
}

// New returns the admin API over opts.Reconciler. It binds opts.Metrics
// (if any) to the reconciler, so a Metrics value serves one Server.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := opts.Metrics
	if m == nil {
		m = NewMetrics()
	}
	m.bind(opts.Reconciler)
	return &Server{opts: opts, rec: opts.Reconciler, metrics: m, log: log}
}

// Handler returns the whole admin API of DESIGN.md 5: health, metrics,
// the /api/v1 endpoints and the webhooks.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /api/v1/status", s.status)
	mux.HandleFunc("GET /api/v1/ssls", s.ssls)
	mux.HandleFunc("GET /api/v1/ssls/{name}", s.ssl)
	mux.Handle("POST /api/v1/reconcile", s.requireToken(http.HandlerFunc(s.reconcile)))
	s.hooks(mux)
	for pattern, h := range s.opts.Routes {
		mux.Handle(pattern, h)
	}
	return mux
}

// WebhookHandler returns only the webhook endpoints and /healthz, for
// --webhook-listen: an address that the Git host can reach while the
// admin API stays on loopback.
func (s *Server) WebhookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	s.hooks(mux)
	return mux
}

func (s *Server) hooks(mux *http.ServeMux) {
	for _, p := range []string{ProviderGitHub, ProviderGitLab, ProviderGeneric} {
		mux.Handle("POST /hooks/"+p, s.webhook(p))
	}
}

// apiError is the JSON body of every error answer of /api/v1.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// The status line is out; a failed write means the client left.
	_ = enc.Encode(v)
}
