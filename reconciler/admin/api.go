package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"certops/plan"
)

// ReconcileTimeout bounds POST /api/v1/reconcile?wait=1.
const ReconcileTimeout = 5 * time.Minute

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.rec.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("no revision applied yet\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	doc := statusDoc(s.rec.Status(), s.rec.Ready())
	if s.opts.StatusFields == nil {
		writeJSON(w, http.StatusOK, doc)
		return
	}
	// The extra fields join the document's own at the top level.
	b, err := json.Marshal(doc)
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode status: "+err.Error())
		return
	}
	for k, v := range s.opts.StatusFields() {
		if _, own := m[k]; !own {
			m[k] = v
		}
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) ssls(w http.ResponseWriter, _ *http.Request) {
	// Entities returns a copy; plan.EntityInfo is the SSL document.
	entities := s.rec.Entities()
	if entities == nil {
		entities = []plan.EntityInfo{} // [], not null
	}
	slices.SortFunc(entities, func(a, b plan.EntityInfo) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, entities)
}

func (s *Server) ssl(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if d, ok := s.rec.(Describer); ok {
		if e, ok := d.Descriptions().Lookup(name); ok {
			writeJSON(w, http.StatusOK, e)
			return
		}
		writeError(w, http.StatusNotFound, "no entity named "+quote(name))
		return
	}
	for _, e := range s.rec.Entities() {
		if e.Name == name {
			writeJSON(w, http.StatusOK, e)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no entity named "+quote(name))
}

// reconcileReply is the answer of POST /api/v1/reconcile without wait.
type reconcileReply struct {
	Result string `json:"result"`
}

// reconcile triggers a run; with ?wait=1 (or true) it runs one, waits for
// it and answers its attempt: 200 when applied or unchanged, 422 when the
// revision is invalid (stalled), 500 when it failed, 504 on timeout.
func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("wait") {
	case "", "0", "false":
		s.rec.Trigger()
		writeJSON(w, http.StatusAccepted, reconcileReply{Result: "triggered"})
		return
	case "1", "true":
	default:
		writeError(w, http.StatusBadRequest, "wait: want 1 or 0")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReconcileTimeout)
	defer cancel()
	// The server's WriteTimeout is shorter than a reconcile may take.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(ReconcileTimeout + WriteTimeout))
	a, err := s.rec.ReconcileNow(ctx)
	if a == nil {
		code := http.StatusInternalServerError
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		msg := "reconcile returned no attempt"
		if err != nil {
			msg = err.Error()
		}
		writeError(w, code, msg)
		return
	}
	doc := attemptDoc(a)
	if err != nil {
		doc.Error = err.Error()
	}
	code := http.StatusOK
	switch a.Result {
	case "applied", "unchanged":
	case "stalled":
		code = http.StatusUnprocessableEntity
	default:
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, doc)
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
