package reconciler

import (
	"fmt"

	"certops/source"
	"certops/trust"
)

// Signatures make the reconciler apply only signed revisions (issue 15):
// a revision whose commit or tag, as Mode requires, is unsigned, signed by
// a key not in Keys, or badly signed is stalled like an invalid one, and
// the last verified revision keeps serving. This holds for the revision
// restored from the data dir too, which goes through the same pipeline.
// The source must give signed objects ([source.Tree.Signed], a Git
// source); any other revision is refused.
type Signatures struct {
	Mode trust.Mode
	Keys *trust.Keyring
}

// verify is the verify phase: the signatures Options.Signatures requires
// of t. The refusal's cause is a *trust.VerifyError naming the commit or
// tag, the signer's key fingerprint and the reason.
//
// A revision refused here is checked again on every run (a tag re-signed
// on the same commit, or a key added, lets it through), but the same
// refusal is returned as the same error, so that it is logged once.
func (r *Reconciler) verify(rn *run, t *source.Tree) error {
	s := r.opts.Signatures
	if s.Mode == trust.ModeOff {
		return nil
	}
	defer r.phase(rn, PhaseVerify)()
	var err error
	if t.Signed == nil {
		err = fmt.Errorf("revision %s: the source has no signatures to verify (signature verification needs a Git source)", t.Revision)
	} else {
		var v trust.Verified
		v, err = s.Keys.VerifyRevision(s.Mode, *t.Signed)
		for _, sg := range []*trust.Signer{v.Tag, v.Commit} {
			if sg != nil && err == nil {
				r.log.Debug("signature verified", "revision", t.Revision, "format", sg.Format.String(), "fingerprint", sg.Fingerprint, "key_file", sg.File)
			}
		}
	}
	previous := r.refused
	if previous == nil || t.Revision != r.refusedAt || previous.Phase != PhaseVerify {
		previous = nil
	}
	switch {
	case err == nil && previous != nil:
		// Refused for its signature before, signed now: validate it.
		r.refusedAt, r.refused = "", nil
		return nil
	case err == nil:
		return nil
	case previous != nil && previous.Err.Error() == err.Error():
		return previous
	}
	return &StalledError{Phase: PhaseVerify, Err: err}
}
