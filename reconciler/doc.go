// Package reconciler makes the gateway serve what the repository says. It
// follows an [Origin] (a Git repository or a directory), validates each new
// revision incrementally with package schema (only files whose content
// changed are validated again), resolves secret references through a
// [Resolver], computes a [Plan] against the running state and applies the
// whole desired state to the gateway as one atomic configuration.
//
// One reconcile runs at a time; triggers that arrive meanwhile coalesce into
// one more run. A revision with any invalid entity is not applied at all
// (stalled: it waits for a new revision) and a source or secret store that
// fails is retried with exponential backoff; in both cases the last applied
// state keeps serving. All methods are safe for concurrent use.
//
// The pieces, one file each: [Origin] implementations (source_git.go, the
// only importer of go-git; source_dir.go with fsnotify), incremental
// validation (validate.go), the diff engine ([Diff], [Plan] in plan.go),
// descriptions of entities without key material ([Describe]), the status
// snapshot (status.go), the data dir record (datadir.go) and retry timing
// (backoff.go). The admin API moves to package reconciler/admin.
package reconciler
