package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"certops/certcheck"
	"certops/plan"
	"certops/reconciler/admin"
	"certops/reconciler/report"
	"certops/source"
	"certops/trust"
)

// diffFlags are the flags of `certops diff`.
type diffFlags struct {
	base, head string
	repo, path string
	live       string
	format     string
	exitCode   bool
	token      string
	roots      []string
	trust      trustFlags
}

func newDiffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff (--base REV [--head REV] | --live URL [DIR])",
		Short: "Show what a change to the repository would do",
		Long: `diff prints the plan that the reconciler would apply: "+" entities created,
"~" entities updated (field by field: SNIs, certificates with serial, expiry
and fingerprint, keys by public-key fingerprint, client CA, protocols,
labels), "-" entities deleted, and a summary.

  certops diff --base origin/main                  what this branch changes (PR review)
  certops diff --base v1.2 --head v1.3 --repo DIR  between two revisions
  certops diff --live http://127.0.0.1:9180 DIR    a folder against a running daemon (drift)

Without --head the working tree of --repo is compared, uncommitted changes
included. Secret references are compared as references: no secret store is
asked. A revision with validation errors is reported as errors, not as a
plan. No private key is ever printed.

Exit status: 0 when the plan is computed (with --exit-code: 0 no changes,
2 changes), 1 on any error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.live == "" && len(args) > 0 {
				return fmt.Errorf("a folder argument goes with --live; use --repo and --path with --base")
			}
			return cobra.MaximumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.base, "base", "", "revision to compare from (branch, tag, commit, origin/main, HEAD~1)")
	fl.StringVar(&f.head, "head", "", "revision to compare to (default: the working tree)")
	fl.StringVar(&f.repo, "repo", ".", "folder of the local Git working tree (its root, or a folder below it)")
	fl.StringVar(&f.path, "path", "", "folder below the root that holds the entities")
	fl.StringVar(&f.live, "live", "", "admin API URL of a running daemon to compare the folder with")
	fl.StringVar(&f.format, "format", "text", "output format: text, json or markdown")
	fl.BoolVar(&f.exitCode, "exit-code", false, "exit 2 when there are changes, 0 when there are none")
	fl.StringVar(&f.token, "admin-token-file", "", "file holding the admin API's bearer token, for --live")
	fl.StringArrayVar(&f.roots, "roots", nil, "PEM bundle of private roots that chains may end at (repeatable), for the hygiene checks of the head")
	addTrustFlags(fl, &f.trust)
	return cmd
}

func runDiff(cmd *cobra.Command, f diffFlags, args []string) error {
	switch f.format {
	case "text", "json", "markdown":
	default:
		return fmt.Errorf("--format: %q is not one of text, json, markdown", f.format)
	}
	if (f.base == "") == (f.live == "") {
		return errors.New("give either --base REV (two revisions) or --live URL (a running daemon)")
	}
	if f.live != "" && f.head != "" {
		return errors.New("--head goes with --base, not with --live")
	}
	sigs, err := f.trust.signatures()
	if err != nil {
		return err
	}
	if sigs.Mode != trust.ModeOff && (f.base == "" || f.head == "") {
		return errors.New("--verify-signatures goes with --base and --head: only a commit is signed, not a working tree")
	}
	ctx := cmd.Context()
	var (
		p              *plan.Plan
		baseName, head string
		invalid        []report.Invalid
		findings       []certcheck.Finding
		fileOf         = map[string]string{} // the head's file of each entity with findings
	)
	if f.live != "" {
		dir := "."
		if len(args) == 1 {
			dir = args[0]
		}
		baseName, head = "daemon "+f.live, dir
		local, problems, err := plan.DescribeTree(os.DirFS(dir), f.path)
		if err != nil {
			return err
		}
		if problems != nil {
			invalid = append(invalid, report.Invalid{Revision: dir, Problems: problems})
		} else {
			c := &admin.Client{Base: f.live}
			if f.token != "" {
				tok, err := admin.ReadSecretFile(f.token)
				if err != nil {
					return fmt.Errorf("--admin-token-file: %w", err)
				}
				c.Token = string(tok)
			}
			live, err := c.SSLs(ctx)
			if err != nil {
				return err
			}
			p = admin.Drift(live, local)
		}
	} else {
		baseName, head = f.base, f.head
		if head == "" {
			head = "working tree"
		}
		repo, path, err := repoRoot(f.repo, f.path)
		if err != nil {
			return err
		}
		f.repo, f.path = repo, path
		var sides [2][]plan.EntityInfo
		var checker *certcheck.Checker
		for i, rev := range []string{f.base, f.head} {
			label := []string{baseName, head}[i]
			fsys, err := source.OpenRevision(ctx, f.repo, rev)
			if err != nil {
				return err
			}
			if i == 1 && sigs.Mode != trust.ModeOff {
				// The head is what would be applied: refuse it as the
				// daemon would (a CI gate on unsigned pull requests).
				t, _ := fsys.(*source.Tree)
				if t == nil || t.Signed == nil {
					return fmt.Errorf("--verify-signatures: %s has no signatures to verify", rev)
				}
				if _, err := sigs.Keys.VerifyRevision(sigs.Mode, *t.Signed); err != nil {
					return fmt.Errorf("%s: %w", rev, err)
				}
			}
			infos, problems, err := plan.DescribeTree(fsys, f.path)
			if err != nil {
				return err
			}
			if problems == nil && i == 1 {
				problems, checker, err = checkHead(fsys, f.path, f.roots)
				if err != nil {
					return err
				}
			}
			if problems != nil {
				invalid = append(invalid, report.Invalid{Revision: label, Problems: problems})
			}
			sides[i] = infos
		}
		if invalid == nil {
			p = plan.Diff(sides[0], sides[1])
			findings = plan.RenewalFindings(checker, sides[0], sides[1])
			for _, e := range sides[1] {
				if slices.ContainsFunc(findings, func(fd certcheck.Finding) bool { return fd.Entity == e.Name }) {
					fileOf[e.Name] = e.File
				}
			}
		}
	}
	out := cmd.OutOrStdout()
	if invalid != nil {
		if err := printInvalid(out, cmd.ErrOrStderr(), f.format, invalid); err != nil {
			return err
		}
		return exitError{code: 1}
	}
	if err := printPlan(out, f.format, p, baseName, head); err != nil {
		return err
	}
	if failed, err := printFindings(out, cmd.ErrOrStderr(), f.format, findings, fileOf); err != nil || failed {
		return cmp.Or(err, error(exitError{code: 1}))
	}
	if f.exitCode && !p.Empty() {
		return exitError{code: 2}
	}
	return nil
}

// repoRoot finds the root of the Git working tree that holds dir, so that
// both sides of a diff are read from the same root: a revision's tree
// starts at the root, and a --repo below it becomes part of --path.
func repoRoot(dir, path string) (root, rootPath string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("--repo: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			rel, err := filepath.Rel(d, abs)
			if err != nil {
				return "", "", fmt.Errorf("--repo: %w", err)
			}
			return d, filepath.ToSlash(filepath.Join(rel, filepath.FromSlash(path))), nil
		}
		if filepath.Dir(d) == d {
			return "", "", fmt.Errorf("--repo: %s is not inside a Git working tree", dir)
		}
	}
}

func printPlan(w io.Writer, format string, p *plan.Plan, base, head string) error {
	switch format {
	case "json":
		return report.JSON(w, p)
	case "markdown":
		_, err := io.WriteString(w, report.Markdown(p, report.MarkdownOptions{Base: base, Head: head}))
		return err
	}
	return report.Text(w, p, useColor(w))
}

// printInvalid reports the validation errors of the revisions that do not
// validate: on stderr as file:line:col lines, and for json and markdown
// also on stdout, so a CI job that posts stdout shows them.
func printInvalid(stdout, stderr io.Writer, format string, invalid []report.Invalid) error {
	if err := report.InvalidText(stderr, invalid); err != nil {
		return err
	}
	switch format {
	case "json":
		return report.InvalidJSON(stdout, invalid)
	case "markdown":
		_, err := io.WriteString(stdout, report.MarkdownInvalid(invalid))
		return err
	}
	return nil
}
