package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"certops/examples"
	"certops/gateway"
	"certops/reconciler"
)

// runFlags are the flags of `certops run`; each also reads CERTOPS_<FLAG>.
type runFlags struct {
	source string
	path   string
	listen string
	admin  string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Follow a repository and serve its certificates through the TLS gateway",
		Long: `run follows a repository of SSL entity files and serves them through the
in-process TLS gateway, applying every valid revision without a restart.

Without --source it serves the example repository embedded in the binary.

Every flag can also be set with an environment variable CERTOPS_<FLAG>, dashes
as underscores (CERTOPS_SOURCE, CERTOPS_LISTEN, ...); a flag given on the
command line wins over its variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			return runDaemon(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "repository to follow: a directory (default: the embedded example)")
	fl.StringVar(&f.path, "path", "", "folder below the repository root that holds the entities")
	fl.StringVar(&f.listen, "listen", ":9443", "address of the TLS gateway")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:9180", "address of the admin API")
	return cmd
}

func runDaemon(cmd *cobra.Command, f runFlags) error {
	log, err := newLogger(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	var src fs.FS = examples.Basic
	path := "basic"
	if f.source != "" {
		src, path = os.DirFS(f.source), f.path
	}
	gw := gateway.New(gateway.Options{Logger: log.With("component", "gateway")})
	rec := reconciler.New(reconciler.Options{
		Source:  src,
		Path:    path,
		Gateway: gw,
		Logger:  log.With("component", "reconciler"),
	})

	ctx := cmd.Context()
	tlsLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	adminLn, err := net.Listen("tcp", f.admin)
	if err != nil {
		tlsLn.Close()
		return fmt.Errorf("admin API: %w", err)
	}
	admin := &http.Server{Handler: rec.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("certops started", "listen", tlsLn.Addr().String(), "admin", adminLn.Addr().String(), "version", buildVersion())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Serve(ctx, tlsLn) })
	g.Go(func() error {
		if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin API: %w", err)
		}
		return nil
	})
	g.Go(func() error { return rec.Run(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return admin.Shutdown(shutdownCtx)
	})
	err = g.Wait()
	log.Info("certops stopped")
	return err
}
