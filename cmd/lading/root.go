package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/transfer"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// rootOptions are the global flags and what one run of the CLI holds open.
type rootOptions struct {
	verbose      bool
	logFormat    string
	progressMode string
	cpuProfile   string

	logger   *slog.Logger
	stopProf func()

	reg registryFlags
	cmd *cobra.Command // the command running

	mu      sync.Mutex
	targets []*transfer.Target
}

const rootLong = `lading builds, inspects, verifies, unpacks and copies OCI container images.

References name images the way skopeo does:
  oci:DIR          the only image in the OCI layout DIR (or the one tagged "latest")
  oci:DIR:TAG      the image tagged TAG in DIR (a tag may hold "/" and ":", as in team/app:v1)
  oci:DIR@DIGEST   the manifest or index with that digest in DIR

Data goes to stdout; messages, warnings and progress to stderr. Commands that print a result take
--format json (lowerCamel keys; inspect keeps docker's field names so docker's templates work).

Exit codes:
  0    success
  1    failure
  2    usage: unknown flags, wrong arguments
  3    not found: a layout, tag, blob, manifest or platform
  4    verification failed: a digest or size does not match, verify found problems
  5    authentication or permission refused
  6    unavailable: locked, busy or unreachable
  130  interrupted`

func newRootCmd(opts *rootOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "lading",
		Short:         "Build, inspect, verify, unpack and copy OCI images",
		Long:          rootLong,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.cmd = cmd
			if err := opts.setup(cmd.ErrOrStderr()); err != nil {
				return usageError{err}
			}
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if opts.stopProf != nil {
				opts.stopProf()
			}
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.BoolVarP(&opts.verbose, "verbose", "v", false, "log each step to stderr")
	pf.StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&opts.progressMode, "progress", "auto", "progress on stderr: auto, tty, plain, json or quiet")
	pf.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = pf.MarkHidden("cpuprofile")
	opts.reg.register(root)
	root.AddCommand(
		newInitCmd(opts), newLsCmd(opts), newTagCmd(opts), newRmCmd(opts), newCopyCmd(opts),
		newInspectCmd(opts), newManifestCmd(opts), newConfigCmd(opts), newBlobCmd(opts), newDigestCmd(opts),
		newValidateCmd(opts), newVerifyCmd(opts), newGCCmd(opts),
		newBuildCmd(opts), newMutateCmd(opts), newAppendCmd(opts), newFlattenCmd(opts), newCommitCmd(opts),
		newUnpackCmd(opts), newLayersCmd(opts), newDiffCmd(opts), newIndexCmd(opts),
		newLoginCmd(opts), newLogoutCmd(opts), newPullCmd(opts), newPushCmd(opts), newCatalogCmd(opts), newDeleteCmd(opts),
		newBundleCmd(opts), newRunCmd(opts),
		newServeCmd(opts),
	)
	for _, c := range root.Commands() {
		wrapArgs(c)
		switch c.Name() {
		case "inspect", "manifest", "config", "digest", "tag", "rm", "copy", "mutate", "append", "flatten", "unpack", "layers", "diff", "push", "delete":
			c.ValidArgsFunction = completeRef
		}
	}
	return root
}

// wrapArgs makes cobra's argument checks usage errors.
func wrapArgs(c *cobra.Command) {
	if c.Args == nil {
		return
	}
	check := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{fmt.Errorf("%s: %w (usage: %s)", cmd.CommandPath(), err, cmd.UseLine())}
		}
		return nil
	}
}

// setup prepares logging and profiling from the global flags.
func (o *rootOptions) setup(stderr io.Writer) error {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text", "":
		o.logger = slog.New(slog.NewTextHandler(stderr, ho))
	case "json":
		o.logger = slog.New(slog.NewJSONHandler(stderr, ho))
	default:
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	switch o.progressMode {
	case "auto", "tty", "plain", "json", "quiet":
	default:
		return fmt.Errorf("--progress %q: want auto, tty, plain, json or quiet", o.progressMode)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			o.stopProf = func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	return nil
}

// log returns the logger, also before setup ran (completion).
func (o *rootOptions) log() *slog.Logger {
	if o.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.logger
}

// track records a target the command opened, to be closed at the end.
func (o *rootOptions) track(t *transfer.Target) *transfer.Target {
	o.mu.Lock()
	o.targets = append(o.targets, t)
	o.mu.Unlock()
	return t
}

// closeAll closes every target the command opened, releasing the writers'
// lock a write takes (which keeps gc in other processes from collecting
// untagged blobs).
func (o *rootOptions) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.targets {
		t.Close()
	}
	o.targets = nil
}

// run executes the CLI with args; main and the tests call it.
func run(ctx context.Context, stdout, stderr io.Writer, stdin io.Reader, args ...string) error {
	opts := &rootOptions{}
	cmd := newRootCmd(opts)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetIn(stdin)
	defer opts.closeAll()
	return cmd.ExecuteContext(ctx)
}

// oneLine folds a multi-line error into one line for stderr.
func oneLine(err error) string {
	return oneLineString(err.Error())
}

func printf(cmd *cobra.Command, format string, a ...any) {
	fmt.Fprintf(cmd.OutOrStdout(), format, a...)
}

// info prints a message for people to stderr.
func info(cmd *cobra.Command, format string, a ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", a...)
}

// warn prints a warning to stderr, one line in the style of errors.
func warn(cmd *cobra.Command, format string, a ...any) {
	fmt.Fprintln(cmd.ErrOrStderr(), "lading: warning: "+oneLine(fmt.Errorf(format, a...)))
}

// oneLineString folds a multi-line message into one line.
func oneLineString(s string) string {
	return strings.Join(strings.Split(strings.TrimSpace(s), "\n"), "; ")
}
