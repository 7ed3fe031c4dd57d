// Package secrets resolves the secret references of DESIGN.md 2.4 —
// $env://NAME[/field], $secret://vault/<path>/<field> and
// $secret://aws/<secret-id>[/<json-field>] — to bytes, and keeps them fresh.
//
// A Cache is the only entry point. Resolve returns a reference's cached value,
// fetching it on first use; concurrent first resolutions of one reference
// collapse into one request to the store. Run refreshes every cached
// reference every Options.Refresh in the background, all in one round that
// reads each secret once and publishes its results at once, so that a
// certificate and its key (two fields of one secret) change together. A
// changed value, or a reference turning stale or fresh again, calls
// Options.OnChange once per round (the daemon wires it to
// reconciler.Trigger, so a rotation in the store is applied without a
// commit). A failed refresh keeps serving the previous value, makes Stale
// report the failure (the entity is degraded), and is retried with
// exponential backoff capped at Options.Refresh.
//
// The reference grammar is package schema's (schema.ParseReference); this
// package splits each provider's path further:
//
//   - env: NAME, or NAME/field where field is read from the variable's JSON
//     object value.
//   - vault: the secret's path (mount first) before the last "/", the field
//     after it. The KV version is detected once per mount with
//     GET /v1/sys/internal/ui/mounts/<path>, as the Vault CLI does, unless
//     VAULT_KV_VERSION forces it.
//   - aws: the longest prefix of the path that names an existing secret is the
//     secret id; the remaining segments, if any, are a JSON field path. The
//     split is remembered so the search is not repeated.
//
// Guarantees: resolved values are held in memory only, in a type that
// redacts itself in logs (slog.LogValuer) and in fmt output (fmt.Formatter);
// errors name the reference, never the value; nothing is written to disk.
// Every method of Cache is safe for concurrent use.
package secrets
