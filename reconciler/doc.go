// Package reconciler makes the gateway serve what the repository says. It
// follows a [source.Source] (a Git repository, a folder, the embedded
// example), validates each new revision incrementally with package schema
// (only files whose content changed are validated again), resolves secret
// references through a [Resolver], computes a [plan.Plan] against the
// running state and applies the whole desired state to the gateway as one
// atomic configuration; then hands the applied revision to each [Sink].
//
// One reconcile runs at a time; triggers that arrive meanwhile coalesce into
// one more run. A revision with any invalid entity is not applied at all
// (stalled: it waits for a new revision) and a source, secret store or sink
// that fails is retried with exponential backoff; in both cases the last
// applied state keeps serving. All methods are safe for concurrent use.
//
// A reconcile is a sequence of phases (pipeline.go): fetch, load, resolve,
// plan, apply. Each returns a [*StalledError] (the revision is refused) or
// a [*RetryableError] (retried with backoff), and the attempt's result,
// problems and log lines are decided from that type in one place. The
// other pieces, one file each: the loop and its triggers (reconciler.go),
// incremental validation (validate.go), secret resolution (resolve.go),
// the sinks (sink.go), the status snapshot (status.go) and the data dir
// record (datadir.go). Sources live in package source, plans and entity
// descriptions in package plan, the admin API in reconciler/admin and the
// human-readable reports in reconciler/report.
package reconciler
