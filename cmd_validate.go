package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"certops/certcheck"
	"certops/schema"

	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	var (
		format     string
		warnWithin time.Duration
		strict     bool
		verbose    bool
		managers   string
		roots      []string
	)
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Validate a repository of SSL entity files",
		Long: `validate checks every entity file (*.yaml, *.yml, *.json) below DIR (default
the current folder) against the built-in CUE schema and the repository's *.cue
policy, then checks the certificates: PEM parsing, keys matching certificates,
SNI syntax and coverage, validity, client CAs, duplicate names and SNIs,
and the hygiene checks: chain order and trust (system roots, --roots, the
repository's *.roots.pem), weak keys, curves and signatures, extended key
usage, lifetimes (SC-081), zlint, keys shared by two entities; the policy's
#Checks tunes their severities (certops schema lists them).
Secret references are checked for syntax only.

Every problem is reported as file:line:col: field: message. The exit status is
0 when the repository is valid, 1 when it is not (with --strict, warnings
count). --format github prints GitHub Actions annotations.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// What decides the verdict comes from the environment as for
			// run, so that a CI job set up like the daemon checks what it
			// would serve.
			if err := bindEnv(cmd, "secret-managers", "roots", "warn-within"); err != nil {
				return err
			}
			f, err := schema.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			if warnWithin < 0 {
				return fmt.Errorf("--warn-within: %v is negative", warnWithin)
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			fi, err := os.Stat(dir)
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a folder", dir)
			}
			// Paths in the report are relative to the working directory
			// when DIR is below it, as GitHub annotations need.
			fsys, root, prefix := os.DirFS(dir), ".", dir
			if filepath.IsLocal(dir) {
				fsys, root, prefix = os.DirFS("."), filepath.ToSlash(filepath.Clean(dir)), ""
			}
			sm, err := loadSecretManagers(managers)
			if err != nil {
				return err
			}
			private, err := certcheck.ReadRootFiles(roots)
			if err != nil {
				return err
			}
			res, err := schema.LoadContext(cmd.Context(), fsys, schema.Options{Root: root, WarnWithin: warnWithin, Hygiene: &schema.Hygiene{Roots: private}})
			if err != nil {
				return err
			}
			checkSecretManagers(res, sm)
			out := cmd.OutOrStdout()
			err = schema.WriteReport(out, res, f, schema.ReportOptions{
				Color:   f == schema.FormatText && useColor(out),
				Verbose: verbose,
				Strict:  strict,
				Dir:     filepath.ToSlash(prefix),
			})
			if err != nil {
				return err
			}
			if res.Failed(strict) {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json or github (GitHub Actions annotations)")
	cmd.Flags().StringArrayVar(&roots, "roots", nil, "PEM bundle of private roots that chains may end at (repeatable); the repository's *.roots.pem add theirs")
	cmd.Flags().DurationVar(&warnWithin, "warn-within", schema.DefaultWarnWithin, "warn about certificates that expire within this duration")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings too")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list the files that were ignored")
	addSecretManagersFlag(cmd.Flags(), &managers)
	return cmd
}
