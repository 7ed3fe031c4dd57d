package reconciler

import (
	"path/filepath"

	"certops/certcheck"
)

// lintResultsFile keeps zlint's results by leaf in the data dir
// (certcheck.LintStore), so that a restart does not lint the unchanged
// leaves again: zlint is most of what the hygiene checks cost at a cold
// start. It holds lint names and messages about certificates, never a
// certificate or a key.
const lintResultsFile = "zlint-results"

// openLintStore reads the zlint results kept in the data dir into the
// process's cache, before the first load. It returns nil (nothing kept)
// without a data dir, hygiene checks or a source: an embedded file system
// (the example, issued anew at each start) leaves the data dir untouched.
// A file it cannot read is logged and written anew.
func (r *Reconciler) openLintStore() *certcheck.LintStore {
	if r.opts.DataDir == "" || r.opts.Hygiene == nil || r.opts.Source == nil {
		return nil
	}
	s, err := certcheck.OpenLintStore(filepath.Join(r.opts.DataDir, lintResultsFile))
	if err != nil {
		r.log.Warn("cannot read the kept zlint results; the leaves are linted again", "err", err)
	}
	return s
}

// saveLintStore writes to the data dir the results of the leaves linted
// since the last call (after a reconcile: what it linted is served or
// refused by then, so writing delays nothing). A failure is logged: the
// results are only a cache.
func (r *Reconciler) saveLintStore(s *certcheck.LintStore) {
	if err := s.Save(); err != nil {
		r.log.Warn("cannot keep the zlint results in the data dir; a restart lints the leaves again", "err", err)
	}
}
