// Package plan describes entities without their secrets and compares two
// desired states. [EntityInfo] (with [ChainInfo]) is the one description
// of an entity: the admin API serves it as its SSL document (its JSON
// form, see [EntityInfo.MarshalJSON]), metrics read expiry from it, and
// [Diff] compares two lists of it into a [Plan] that `certops diff`, the
// admin API's drift check and the reconciler print. [Describe] builds it
// from a validated entity, [DescribeTree] from a file tree without
// resolving any secret reference. A [Set] holds many descriptions packed
// ([Packed]: one string each, which the garbage collector does not scan),
// for a daemon that keeps every entity's description for as long as it
// serves it, and unpacks the few it reads.
//
// Nothing here holds a private key or a resolved secret value: a key is
// described by the SHA-256 of its public half, a reference as written. The
// package reads no repository itself (it takes an [io/fs.FS]) and imports
// neither go-git nor the reconciler. Its functions are safe for concurrent
// use, and pure but for the bounded table of the strings that packed
// descriptions share (see [Packed]).
package plan
