package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/errdef"
	"github.com/spf13/cobra"
)

// processFlags are the flags that shape a container's process.
type processFlags struct {
	env        []string
	workdir    string
	user       string
	entrypoint string
	network    string
	platform   string
}

func (p *processFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVarP(&p.env, "env", "e", nil, "set an environment variable, KEY=VALUE (KEY alone takes this process's value)")
	fs.StringVarP(&p.workdir, "workdir", "w", "", "working directory in the container")
	fs.StringVarP(&p.user, "user", "u", "", "user[:group] to run as, by name (from the image's /etc/passwd and /etc/group) or number")
	fs.StringVar(&p.entrypoint, "entrypoint", "", "replace the image's entrypoint (its command is dropped too)")
	fs.StringVar(&p.network, "network", "none", "network: none (a namespace of its own with loopback only) or host")
	fs.StringVar(&p.platform, "platform", "", "from an index, this platform's image (default: this machine's)")
}

// options turns the flags and the command line after the reference into
// bundle options.
func (p *processFlags) options(cmd *cobra.Command, args []string) (bundle.Options, error) {
	var o bundle.Options
	for _, e := range p.env {
		if !strings.Contains(e, "=") {
			v, ok := os.LookupEnv(e)
			if !ok {
				continue
			}
			e += "=" + v
		}
		o.Env = append(o.Env, e)
	}
	o.WorkingDir, o.User = p.workdir, p.user
	if cmd.Flags().Changed("entrypoint") {
		o.Entrypoint = []string{}
		if p.entrypoint != "" {
			o.Entrypoint = []string{p.entrypoint}
		}
	}
	if len(args) > 0 {
		o.Args = args
	}
	switch p.network {
	case "none", "":
	case "host":
		o.HostNetwork = true
	default:
		return o, fmt.Errorf("--network %q: %w: want none or host", p.network, errdef.ErrInvalid)
	}
	return o, nil
}

func newBundleCmd(ro *rootOptions) *cobra.Command {
	var p processFlags
	cmd := &cobra.Command{
		Use:   "bundle REF DIR [-- COMMAND ARGS...]",
		Short: "Write an OCI runtime bundle: DIR/rootfs unpacked and DIR/config.json",
		Long: `Unpack the image into DIR/rootfs and write DIR/config.json from its configuration as the image spec's
conversion rules say: environment, entrypoint and command, working directory, the user resolved through the
image's own /etc/passwd and /etc/group, and annotations for the platform, creation time, stop signal, exposed
ports and labels. Around that, the defaults a container engine gives (namespaces, kernel filesystems, docker's
default capabilities, no new privileges, masked paths, rlimits; a user namespace when not root). Image volumes
become directories in DIR/volumes. Any OCI runtime can then run it: runc run --bundle DIR NAME.`,
		Example: `  lading bundle oci:./images:app ./app-bundle && sudo runc run --bundle ./app-bundle app
  lading bundle oci:./images:app ./dbg --user 0 --env DEBUG=1 -- /bin/sh -c 'id; env'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := p.options(cmd, args[2:])
			if err != nil {
				return usageError{err}
			}
			src, img, err := ro.loadImage(cmd, args[0], p.platform)
			if err != nil {
				return err
			}
			if l, ok := src.Layout(); ok && inside(args[1], l.Dir()) {
				return usageError{fmt.Errorf("bundle into %s: %w: the directory is inside the layout %s", args[1], errdef.ErrInvalid, l.Dir())}
			}
			return container.WriteBundle(cmd.Context(), src.Store, img, args[1], o)
		},
	}
	p.register(cmd)
	return cmd
}

func newRunCmd(opts *rootOptions) *cobra.Command {
	var (
		p        processFlags
		volumes  []string
		rm       bool
		name     string
		runtime  string
		cacheDir string
		rootfs   string
		tty      bool
	)
	cmd := &cobra.Command{
		Use:   "run REF [-- COMMAND ARGS...]",
		Short: "Run an image in a container with an OCI runtime (runc, crun)",
		Long: `Run the image in the foreground with an OCI runtime: stdin, stdout and stderr pass through, signals are
passed on, and lading exits with the container's exit code (125 when lading or the runtime fails, as docker
does; 2 for a bad command line). The image is unpacked once into a cache
($XDG_CACHE_HOME/lading, or --cache-dir) keyed by its layers' chain ID, so later runs start at once; each run gets a
writable root filesystem of its own (an overlay as root, else a copy), and the cached tree is never changed. The
container and its runtime state are deleted when it exits; its files too with --rm.

Without --runtime (or LADING_RUNTIME), the first of crun, runc and youki on PATH that can start a container on this
machine is used (each is tried once; the verdict is kept in the cache).`,
		Example: `  lading run oci:./images:app
  lading run --rm -v ./data:/data:ro -e DEBUG=1 oci:./images:app -- /bin/sh -c 'ls /data'
  lading run --runtime crun --network host oci:./images:web`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bo, err := p.options(cmd, args[1:])
			if err != nil {
				return usageError{err}
			}
			bo.Terminal = tty
			mode, err := container.ParseRootfsMode(rootfs)
			if err != nil {
				return usageError{err}
			}
			var vols []container.Volume
			for _, v := range volumes {
				vol, err := container.ParseVolume(v)
				if err != nil {
					return usageError{err}
				}
				vols = append(vols, vol)
			}
			if name != "" {
				if err := container.CheckName(name); err != nil {
					return usageError{err}
				}
			}
			ctx := cmd.Context()
			cache, err := container.OpenCache(cacheDir)
			if err != nil {
				return runFailed(cmd, err)
			}
			cache.Logger = opts.log()
			rt, err := container.FindRuntime(ctx, runtime, container.FindOptions{CacheDir: cache.Dir})
			if err != nil {
				return runFailed(cmd, err)
			}
			src, img, err := opts.loadImage(cmd, args[0], p.platform)
			if err != nil {
				return runFailed(cmd, err)
			}
			code, err := container.Run(ctx, src.Store, img, container.Options{
				Options: bo, Name: name, Volumes: vols, Remove: rm, Runtime: rt, Cache: cache, RootfsMode: mode,
				ExecOptions: container.ExecOptions{
					Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), ForwardSignals: true,
				},
				Logger: opts.log(),
			})
			switch {
			case err == nil && code == 0:
				return nil
			case err == nil, code >= 0 && ctx.Err() != nil:
				return exitError{code: code} // the container's own status
			}
			return runFailed(cmd, err)
		},
	}
	p.register(cmd)
	fs := cmd.Flags()
	// -v is docker's volume flag here; --verbose (the global -v) keeps its
	// long form.
	fs.BoolVar(&opts.verbose, "verbose", false, "log each step to stderr")
	fs.StringArrayVarP(&volumes, "volume", "v", nil, "bind-mount HOST:CONTAINER[:ro] (repeatable)")
	fs.BoolVar(&rm, "rm", false, "remove the container's files when it exits")
	fs.StringVar(&name, "name", "", "container name (default: lading- and random hex)")
	fs.StringVar(&runtime, "runtime", "", "OCI runtime: runc, crun or a path (default: $"+container.RuntimeEnv+", else the first that works)")
	fs.StringVar(&cacheDir, "cache-dir", "", "cache of unpacked images and containers (default: $XDG_CACHE_HOME/lading)")
	fs.StringVar(&rootfs, "rootfs", "auto", "how each run gets a writable root filesystem: auto, overlay or copy")
	fs.BoolVarP(&tty, "tty", "t", false, "give the container a terminal")
	return cmd
}

// runFailed prints a failure of lading or of the runtime (not of the
// container) and exits with 125, apart from any code the container could
// give.
func runFailed(cmd *cobra.Command, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "lading: "+oneLine(err))
	return exitError{code: exitRunFailed}
}

// exitRunFailed is lading run's exit code when the container could not be
// run.
const exitRunFailed = 125
