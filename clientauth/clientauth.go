// Package clientauth holds the bound of client-certificate verification
// (mTLS) that the gateway enforces and the schema validates against, so
// that the two cannot drift (STYLE.md: one rule, one place): a depth the
// schema accepts is a depth the gateway applies.
//
// It is its own package because the gateway owns the limit but the schema
// may not import the gateway (dependencies point main -> reconciler ->
// {schema, gateway}); like package sni it uses the standard library only,
// so the gateway may import it.
package clientauth

// MaxDepth is the most intermediates the gateway verifies between a client
// certificate and its CA (gateway.Entity.ClientDepth is 0..MaxDepth). The
// schema accepts a larger client.depth, as APISIX does, and serves it as
// MaxDepth with a warning.
const MaxDepth = 16
