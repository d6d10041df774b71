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
	"github.com/lading-oci/lading/mutate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// containerfileFlags are build's flags for building from a Containerfile.
type containerfileFlags struct {
	file      string
	buildArgs []string
	network   string
	quiet     bool
	noCache   bool
	target    string
	cacheDir  string
	runtime   string
}

func (f *containerfileFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.file, "file", "f", "", "build from this Containerfile (Dockerfile); DIR is then the build context")
	fs.StringArrayVar(&f.buildArgs, "build-arg", nil, "with -f: a value for an ARG, KEY=VALUE (KEY alone takes this process's value)")
	fs.StringVar(&f.network, "network", "none", "with -f: RUN's network, none (loopback only) or host")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "with -f: print only the image digest")
	fs.BoolVar(&f.noCache, "no-cache", false, "with -f: run every step, even unchanged ones")
	fs.StringVar(&f.target, "target", "", "with -f: the stage to build (default: the last)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "with -f: cache of unpacked images and build steps (default: $XDG_CACHE_HOME/lading)")
	fs.StringVar(&f.runtime, "runtime", "", "with -f: OCI runtime for RUN, runc, crun or a path (default: $"+container.RuntimeEnv+", else the first that works)")
}

// configFlagNames are build's image configuration flags, applied on top of
// what the Containerfile makes.
var configFlagNames = []string{"entrypoint", "cmd", "env", "workdir", "user", "expose", "volume", "label", "annotation", "author", "stop-signal"}

// buildFromContainerfile is lading build -f FILE CONTEXT -t DST.
func buildFromContainerfile(cmd *cobra.Command, f *containerfileFlags, e *editFlags, contextDir string) error {
	for _, name := range []string{"from", "platform", "uid", "gid"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s: %w with -f (the Containerfile's FROM says what to build on)", name, errdef.ErrUnsupported)
		}
	}
	if err := e.outside(contextDir); err != nil {
		return err
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
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue
			}
		}
		if k == "" {
			return fmt.Errorf("--build-arg %q: %w: want KEY=VALUE", a, errdef.ErrInvalid)
		}
		args[k] = v
	}
	if f.network != "none" && f.network != "host" && f.network != "" {
		return fmt.Errorf("--network %q: %w: want none or host", f.network, errdef.ErrInvalid)
	}
	j, err := e.prepare(cmd, "")
	if err != nil {
		return err
	}
	cache, err := container.OpenCache(f.cacheDir)
	if err != nil {
		return err
	}
	var rt *container.Runtime
	if f.runtime != "" {
		if rt, err = container.FindRuntime(cmd.Context(), f.runtime, container.FindOptions{}); err != nil {
			return err
		}
	}
	var out, errOut io.Writer = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.quiet {
		out, errOut = nil, nil
	}
	res, err := containerfile.Build(cmd.Context(), containerfile.Options{
		Store:       j.st,
		File:        file,
		ContextDir:  contextDir,
		BuildArgs:   args,
		Target:      f.target,
		HostNetwork: f.network == "host",
		Resolve: func(ctx context.Context, ref string) (*content.LoadedImage, error) {
			src, img, err := loadImage(ctx, ref, "")
			if err != nil {
				return nil, err
			}
			if err := copyGraph(ctx, src, j.st, img.Desc); err != nil {
				return nil, err
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
	})
	if err != nil {
		return err
	}
	if !f.quiet {
		for _, w := range res.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
		}
	}
	img := res.Image
	desc := img.Desc
	for _, name := range configFlagNames {
		if cmd.Flags().Changed(name) {
			if desc, err = mutate.Mutate(cmd.Context(), j.st, img, mutate.MutateOptions{Changes: j.changes}); err != nil {
				return err
			}
			break
		}
	}
	if err := j.st.Tag(cmd.Context(), desc, j.tag); err != nil {
		return err
	}
	if f.quiet {
		printf(cmd, "%s\n", desc.Digest)
		return nil
	}
	printf(cmd, "%s %s\n", e.dst, desc.Digest)
	return nil
}
