package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type rootOptions struct {
	verbose    bool
	cpuProfile string
	logger     *slog.Logger
	stopProf   func()
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:   "lading",
		Short: "Build, inspect, verify and unpack OCI container images",
		Long: `lading works with OCI container images kept in OCI image layouts.

References name an image in a layout directory the way skopeo does:
  oci:DIR          the only image in DIR (or the one tagged "latest")
  oci:DIR:TAG      the image tagged TAG in DIR
  oci:DIR@DIGEST   the manifest or index with that digest in DIR`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if opts.verbose {
				level = slog.LevelDebug
			}
			opts.logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if opts.cpuProfile != "" {
				f, err := os.Create(opts.cpuProfile)
				if err == nil && pprof.StartCPUProfile(f) == nil {
					opts.stopProf = func() { pprof.StopCPUProfile(); f.Close() }
				}
			}
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if opts.stopProf != nil {
				opts.stopProf()
			}
		},
	}
	root.PersistentFlags().BoolVarP(&opts.verbose, "verbose", "v", false, "log what is being done to stderr")
	root.PersistentFlags().StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.AddCommand(
		newInitCmd(opts), newLsCmd(opts), newTagCmd(opts), newRmCmd(opts),
		newInspectCmd(opts), newManifestCmd(opts), newConfigCmd(opts), newBlobCmd(opts), newDigestCmd(opts),
		newValidateCmd(opts), newVerifyCmd(opts), newGCCmd(opts),
		newBuildCmd(opts), newMutateCmd(opts), newAppendCmd(opts), newFlattenCmd(opts), newCommitCmd(opts),
		newUnpackCmd(opts), newLayersCmd(opts), newDiffCmd(opts),
		newServeCmd(opts),
	)
	// Commands whose first argument is an image reference complete it.
	for _, c := range root.Commands() {
		switch c.Name() {
		case "inspect", "manifest", "config", "digest", "tag", "rm", "mutate", "append", "flatten", "unpack", "layers", "diff":
			c.ValidArgsFunction = completeRef
		}
	}
	return root
}

// oneLine folds a multi-line error into one line for stderr.
func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	lines := strings.Split(s, "\n")
	if len(lines) == 1 {
		return s
	}
	return strings.Join(lines, "; ")
}

// run executes the root command with args, for tests.
func run(ctx context.Context, stdout, stderr io.Writer, stdin io.Reader, args ...string) error {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetIn(stdin)
	defer closeStores()
	return cmd.ExecuteContext(ctx)
}

func printf(cmd *cobra.Command, format string, a ...any) {
	fmt.Fprintf(cmd.OutOrStdout(), format, a...)
}
