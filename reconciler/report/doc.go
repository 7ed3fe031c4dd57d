// Package report renders the reconciler's plans and the daemon's status for
// people: coloured text for a terminal, Markdown for a pull-request
// comment, and the summary of `certops status`. It only formats what it is
// given; a plan holds no private key or secret value (package reconciler
// guarantees it), and nothing here adds one. Its functions are pure and
// safe for concurrent use.
package report
