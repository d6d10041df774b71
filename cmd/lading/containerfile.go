package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/containerfile"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/lading-oci/lading/mutate"
	"github.com/lading-oci/lading/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// containerfileFlags are build's flags for building from a Containerfile.
type containerfileFlags struct {
	file      string
	buildArgs []string
	network   string
	noCache   bool
	target    string
	cacheDir  string
	runtime   string
}

func (f *containerfileFlags) register(fs *pflag.FlagSet) {
	// -f is --format's on the commands that write images.
	fs.StringVarP(&f.file, "file", "f", "", "build from this Containerfile (Dockerfile); DIR is then the build context")
	fs.StringArrayVar(&f.buildArgs, "build-arg", nil, "with --file: a value for an ARG, KEY=VALUE (KEY alone takes this process's value)")
	fs.StringVar(&f.network, "network", "none", "with --file: RUN's network, none (loopback only) or host")
	fs.BoolVar(&f.noCache, "no-cache", false, "with --file: run every step, even unchanged ones")
	fs.StringVar(&f.target, "target", "", "with --file: the stage to build (default: the last)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "with --file: cache of unpacked images and build steps (default: $XDG_CACHE_HOME/lading)")
	fs.StringVar(&f.runtime, "runtime", "", "with --file: OCI runtime for RUN, runc, crun or a path (default: $"+container.RuntimeEnv+", else the first that works)")
}

// configFlagNames are build's image configuration flags, applied on top of
// what the Containerfile makes.
var configFlagNames = []string{"entrypoint", "cmd", "env", "workdir", "user", "expose", "volume", "label", "annotation", "author",
	"stop-signal", "unset-env", "unset-label", "unset-annotation", "unset-expose", "unset-volume"}

// buildFromContainerfile is lading build -f FILE CONTEXT -t DST.
func buildFromContainerfile(cmd *cobra.Command, o *rootOptions, f *containerfileFlags, e *editFlags, contextDir string) error {
	for _, name := range []string{"from", "platform", "uid", "gid", "exclude"} {
		if cmd.Flags().Changed(name) {
			return usageError{fmt.Errorf("--%s: %w with --file (the Containerfile says what to build on and what to copy)", name, errdef.ErrUnsupported)}
		}
	}
	data, err := readFileCapped(f.file, 4<<20)
	if err != nil {
		return err
	}
	file, err := containerfile.Parse(filepath.Base(f.file), data)
	if err != nil {
		return err
	}
	args := map[string]string{}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return usageError{fmt.Errorf("--build-arg %q: %w: want KEY=VALUE", a, errdef.ErrInvalid)}
		}
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue
			}
		}
		args[k] = v
	}
	if f.network != "none" && f.network != "host" {
		return usageError{fmt.Errorf("--network %q: %w: want none or host", f.network, errdef.ErrInvalid)}
	}
	j, err := e.prepare(cmd, o, "")
	if err != nil {
		return err
	}
	if l, ok := j.dst.Layout(); ok && inside(l.Dir(), contextDir) {
		j.dst.Abandon()
		return usageError{fmt.Errorf("%s: %w: the destination layout %s is inside the build context", contextDir, errdef.ErrInvalid, l.Dir())}
	}
	desc, err := buildFile(cmd, o, f, e, j, file, args, contextDir)
	return j.finish(cmd, o, e, desc, err)
}

// buildFile runs the build into j's destination and applies build's
// configuration flags to the result.
func buildFile(cmd *cobra.Command, o *rootOptions, f *containerfileFlags, e *editFlags, j *editJob, file *containerfile.File,
	args map[string]string, contextDir string) (ocispec.Descriptor, error) {
	ctx := cmd.Context()
	cache, err := container.OpenCache(f.cacheDir)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cache.Logger = o.log()
	var rt *container.Runtime
	if f.runtime != "" {
		if rt, err = container.FindRuntime(ctx, f.runtime, container.FindOptions{}); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	var out, errOut io.Writer = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if e.quiet || e.format.value != "" {
		out, errOut = nil, nil
	}
	res, err := containerfile.Build(ctx, containerfile.Options{
		Store:       j.store,
		File:        file,
		ContextDir:  contextDir,
		BuildArgs:   args,
		Target:      f.target,
		HostNetwork: f.network == "host",
		Resolve: func(ctx context.Context, ref string) (*content.LoadedImage, error) {
			src, img, err := o.loadImage(cmd, ref, "")
			if err != nil {
				return nil, err
			}
			if !transfer.SameStore(src, j.dst) {
				if err := transfer.CopyGraph(ctx, src.Store, j.store, img.Desc, transfer.CopyOptions{}); err != nil {
					return nil, fmt.Errorf("copy %s into %s: %w", ref, e.dst, err)
				}
			}
			return img, nil
		},
		Runtime:     rt,
		Cache:       cache,
		NoCache:     f.noCache,
		Timestamp:   j.layer.Timestamp,
		Compression: j.layer.Compression,
		Stdout:      out,
		Stderr:      errOut,
		Logger:      o.log(),
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, w := range res.Warnings {
		warn(cmd, "%s", w)
	}
	for _, name := range configFlagNames {
		if cmd.Flags().Changed(name) {
			return mutate.Mutate(ctx, j.store, res.Image, mutate.MutateOptions{Changes: j.changes})
		}
	}
	return res.Image.Desc, nil
}

// inside reports whether path is dir or lies below it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	return err1 == nil && err2 == nil && inroot.Within(d, p)
}
