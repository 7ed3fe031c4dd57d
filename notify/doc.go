// Package notify tells people what a certops daemon did: a revision was
// applied, stalled or failed, a certificate degraded, recovered or is
// expiring, or the gateway served something other than what was applied.
//
// A [Notifier] fans each [Message] out to its [Target]s, each a [Provider]
// (one file per provider: the generic JSON webhook signed with HMAC-SHA256,
// Slack-compatible incoming webhooks, Microsoft Teams workflows, and
// Alertmanager's POST /api/v2/alerts) with an optional event filter.
// Targets come from --notify URLs ([ParseURL]) and a --notify-config file
// ([LoadConfig]).
//
// # Guarantees
//
//   - Notify never blocks on the network: every target has its own bounded
//     queue and delivery goroutine, so a dead endpoint never slows the
//     reconciler nor the other targets. A full queue drops its oldest
//     message and counts it ([Stats.Dropped]).
//   - Deliveries are retried with exponential backoff through
//     go-retryablehttp on connection errors, 429 and 5xx.
//   - The same event (same kind, revision, entity and problems) is
//     suppressed for 5 minutes, Flux's default; an expiring event once per
//     certificate per day.
//   - Messages carry the revision, the plan summary and the first problems
//     with file:line, never key material: text that looks like a PEM block
//     is replaced before anything is sent, and URLs (whose paths are the
//     credentials of Slack and Teams webhooks) appear in logs and errors
//     only as scheme and host.
//
// All methods of Notifier are safe for concurrent use.
package notify
