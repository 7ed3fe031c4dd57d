// Package schema turns repository files into trusted SSL entities: it reads
// YAML and JSON entity files (the certops form, and the ADC and APISIX
// `ssls:` forms), validates them against the built-in CUE schema unified
// with the repository's own *.cue policy, and checks their certificates
// (DESIGN.md 2.1), reporting every problem with its file, line, column and
// field path. It knows nothing of Git: its input is an [fs.FS] (Load) or
// one file at a time (Validator.File, for callers that cache results by
// content hash). [ListTree] and [ReadTreeFile] are the one reading rule of
// a tree (which files are read, how symbolic links are followed, that
// nothing but a regular file is opened), shared by `validate`, `diff` and
// the daemon's loader.
//
// Messages never contain the value of a certificate, key or secret field:
// they describe structure and metadata only.
//
// Everything here is safe for concurrent use. CUE is not, so its part of
// the work runs on a fixed set of CUE contexts ("lanes"), one per CPU, each
// used by one goroutine at a time.
package schema
