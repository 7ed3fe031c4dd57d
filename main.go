// Command certops keeps the TLS certificates of a gateway in Git: `run`
// follows a repository of SSL entity files and serves them through an
// in-process TLS gateway; `validate` and `diff` review a repository in CI.
//
// This file holds the command tree and the wiring shared by the commands;
// each command lives in a cmd_<name>.go file beside it. Logic and rendering
// live in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"certops/schema"

	"github.com/lmittmann/tint"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitError carries a process exit code through cobra without printing
// anything more (the command has already reported the problem).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the process exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	default:
		fmt.Fprintln(stderr, "certops:", err)
		return 1
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "certops",
		Short: "GitOps for TLS certificates",
		Long: `certops keeps the TLS certificates of a gateway in Git. A daemon follows a
repository of SSL entity files, validates them against CUE schemas, and applies
every valid revision to an in-process TLS gateway without a restart.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The log flags are refused when wrong on every command, not
		// only on those that log.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			_, err := newLogger(cmd, io.Discard)
			return err
		},
	}
	root.PersistentFlags().String("log-format", "auto", "log format: auto (text on a terminal, else JSON), text or json")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(
		newRunCmd(),
		newPublishCmd(), newFleetCmd(),
		newValidateCmd(),
		newDiffCmd(),
		newStatusCmd(),
		newInventoryCmd(),
		newSchemaCmd(),
		newVersionCmd(),
	)
	return root
}

// bindEnv sets every flag of cmd that was not given on the command line
// from the environment variable CERTOPS_<FLAG> (dashes become underscores),
// so a flag always wins over its variable. With names, only those flags.
func bindEnv(cmd *cobra.Command, names ...string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || len(names) > 0 && !slices.Contains(names, f.Name) {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// envName returns the environment variable that backs a flag.
func envName(flag string) string {
	return "CERTOPS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// newLogger builds the process logger from --log-format and --log-level:
// tint on a terminal, JSON otherwise.
func newLogger(cmd *cobra.Command, w io.Writer) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		} else {
			format = "json"
		}
	case "text", "json":
	default:
		return nil, fmt.Errorf("--log-format: %q is not one of auto, text, json", format)
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationSeconds})), nil
	}
	return slog.New(tint.NewHandler(w, &tint.Options{Level: level, NoColor: !useColor(w)})), nil
}

// durationSeconds writes durations in JSON logs as seconds (issue 17.7):
// slog's JSON handler would write nanoseconds, which no reader expects.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// useColor reports whether output to w may be coloured: on a terminal,
// unless NO_COLOR is set (https://no-color.org).
func useColor(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f) && os.Getenv("NO_COLOR") == ""
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the built-in CUE schema of SSL entities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(schema.Source())
			return err
		},
	}
}

// version is set at build time with -ldflags "-X main.version=..."; it
// falls back to the module version and VCS revision of the build.
var version = ""

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of certops",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "certops", buildVersion())
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
