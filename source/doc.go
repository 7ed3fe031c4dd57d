// Package source produces the revisions the reconciler follows, each as a
// [Tree] of files. A [Source] fetches the current revision; optional
// capabilities are separate interfaces a Source may implement: [Opener]
// (give back a past revision without the network) and [Watcher] (notice
// its own changes).
//
// The sources, one file each: a Git repository ([NewGit], git.go, over
// every transport go-git speaks, with a shallow clone that survives
// restarts), a plain folder ([NewDir], dir.go, watched with fsnotify) and a
// fixed file tree such as the embedded example ([NewFS]). A new kind of
// source (OCI, NATS) is a new file here or a type in another package: a
// Tree is built with [NewTree], and nothing else of this package is needed.
//
// This is the only package that imports go-git and fsnotify. Sources
// redact credentials from their String and from every error they return.
// A Tree is immutable once returned and is also an [io/fs.FS], so a
// revision can be read by anything that reads a file system without being
// copied. A source that knows what changed since the tree it returned
// before (a watched folder's events, a Git tree diffed by subtree hashes)
// records it, and [Tree.ChangedSince] gives it to the reader, which then
// need not compare two listings of 10,000 files.
package source
