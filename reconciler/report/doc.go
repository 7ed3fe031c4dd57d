// Package report renders for people what the reconciler computes: plans as
// coloured text for a terminal or Markdown for a pull-request comment, the
// errors of a revision that does not validate (text, JSON, Markdown), and
// the daemon's status for `certops status`. It only formats what it is
// given; a plan holds no private key or secret value (package reconciler
// guarantees it), and nothing here adds one. Its functions are pure and
// safe for concurrent use.
package report
