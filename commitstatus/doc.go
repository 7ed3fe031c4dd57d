// Package commitstatus shows certops' result on the commit itself: a
// commit status on GitHub or GitLab, named certops/<name>, success with
// the plan summary or failure with the first problems.
//
// A [Poster] posts one status through a host's REST API ([GitHub],
// [GitLab]; one file each). A [Reporter] sits in front of it so that a
// daemon, or a fleet's leader, can report on every reconcile without
// flooding the host: the first status of a revision is posted at once,
// later changes for the same revision at most every 10 s (the latest
// wins, so "applied on 198/200 nodes" replaces "applied on 150/200
// nodes"), and a repeat of what was posted is never sent again. GitHub
// accepts 1,000 statuses per commit and context and rate-limits its API;
// the Reporter keeps far below both. Reports never block: they are posted
// by the Reporter's goroutine, with retries through go-retryablehttp.
//
// Tokens are read from files and sent only in the Authorization
// (GitHub) or PRIVATE-TOKEN (GitLab) header; they never appear in an
// error or a log line.
package commitstatus
