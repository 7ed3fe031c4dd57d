// Package admin is the operations surface of the certops daemon
// (DESIGN.md 5): the admin HTTP API (health, readiness, status, the served
// entities, a reconcile trigger), push webhooks from GitHub, GitLab and
// generic senders, and the Prometheus metrics; and a [Client] for the
// commands that read a running daemon (`certops status`,
// `certops diff --live`).
//
// Guarantees:
//   - No reply, log line or metric carries a private key or a resolved
//     secret: the JSON documents are declared field by field (here, and
//     plan.EntityInfo for the served entities) and hold only public
//     certificate facts, fingerprints and secret references.
//   - Mutating endpoints ask for a bearer token when one is configured,
//     compared in constant time; [CheckAddress] refuses a non-loopback
//     address without one. Webhook signatures and tokens are compared in
//     constant time, bodies over [MaxWebhookBody] are refused, and every
//     refusal is logged at Warn with the remote address and counted.
//   - A valid push to the followed ref calls Trigger, which coalesces: a
//     burst of webhooks causes at most one extra reconcile.
//
// A [Server]'s handlers and a [Metrics]' methods are safe for concurrent
// use.
package admin
