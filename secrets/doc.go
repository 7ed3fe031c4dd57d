// Package secrets resolves the secret references of DESIGN.md 2.4 —
// $env://NAME[/field], $secret://vault/<path>/<field> and
// $secret://aws/<secret-id>[/<json-field>] — to bytes, and keeps them fresh.
//
// A Cache is the only entry point. Resolve returns a reference's cached value,
// fetching it on first use; concurrent first resolutions of one reference
// collapse into one request (x/sync singleflight), and the fields of one
// secret come from one read of it. Run refreshes every cached reference every
// Options.Refresh: a round reads each secret once, fetches the references of
// one secret together and publishes them as soon as they are read, so that a
// certificate and its key change together and a failure shows at once. A
// store that fails three fetches in a row (ErrUnavailable) is not tried
// again in that round: its remaining references turn stale at once, with one
// Warn naming the store. A changed value, or a reference turning stale or
// fresh again (or failing for another reason), calls Options.OnChange (the
// daemon wires it to reconciler.Trigger, so a rotation in the store is
// applied without a commit). A failed refresh keeps serving the previous
// value, makes Stale report the failure (the entity is degraded), and is
// retried with exponential backoff capped at Options.Refresh. Run also
// renews Vault tokens on their own schedule.
//
// Providers are a registry: each registers itself from its own file (env.go,
// vault.go, aws.go) under the name of its grammar, which lives in package
// certops/secrets/ref (standard library only, so that package schema checks
// references without linking a store client). A new store is a Provider in
// a new file here and a ref.Scheme in a new file there. Named secret
// managers (APISIX's secret objects, --secret-managers) are a provider's
// concern: see Managers.
//
//   - env: NAME, or NAME/field where field is read from the variable's JSON
//     object value.
//   - vault: the secret's path (mount first) before the last "/", the field
//     after it, or a manager id, a key path and a field. The KV version is
//     detected once per mount with GET /v1/sys/internal/ui/mounts/<path>, as
//     the Vault CLI does, unless VAULT_KV_VERSION forces it for a mount.
//   - aws: the longest prefix of the path that names an existing secret is the
//     secret id; the remaining segments, if any, are a JSON field path. The
//     split is remembered so the search is not repeated.
//
// Guarantees: resolved values are held in memory only, in a type that
// redacts itself in logs (slog.LogValuer) and in fmt output (fmt.Formatter);
// errors name the reference, never the value; nothing is written to disk.
// Every method of Cache is safe for concurrent use.
package secrets
