// Package report renders what the reconciler computes, one formatter per
// output format: a [plan.Plan] as coloured text for a terminal ([Text]),
// Markdown for a pull-request comment ([Markdown]) or JSON ([JSON]); the
// errors of a revision that does not validate ([InvalidText],
// [InvalidJSON], [MarkdownInvalid], each line a schema.Error); and the
// daemon's status for `certops status` ([Status]). A new output format is
// a new file here.
//
// It renders plain types (plan, reconciler, schema) and never imports the
// admin API's HTTP package. It only formats what it is given; a plan holds
// no private key or secret value (package plan guarantees it), and nothing
// here adds one. Its functions are pure and safe for concurrent use.
package report
