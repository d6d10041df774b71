// Package container runs images with an OCI runtime (runc, crun): it keeps
// unpacked root filesystems in a cache keyed by chain ID, gives each
// container a writable tree over the cached one (an overlay, or a copy),
// writes the runtime bundle (package bundle's config.json), runs the
// runtime in the foreground with the caller's stdio, passes signals on,
// returns the container's exit code, and deletes the container and its
// state on every way out.
//
// Images come as a content.Fetcher and a loaded image, so any store (an
// OCI layout, a registry) can feed it.
package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/lading-oci/lading/mutate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Volume is a host directory (or file) bind-mounted into a container.
type Volume struct {
	// Source is the host path (made absolute).
	Source string
	// Destination is the absolute path in the container.
	Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// ParseVolume parses HOST:CTR, HOST:CTR:ro or HOST:CTR:rw. HOST must exist
// and CTR must be absolute.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Volume{}, fmt.Errorf("volume %q: %w: want HOST:CONTAINER[:ro]", s, errdef.ErrInvalid)
	}
	v := Volume{Destination: path.Clean(parts[1])}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return Volume{}, fmt.Errorf("volume %q: %w: option %q (want ro or rw)", s, errdef.ErrInvalid, parts[2])
		}
	}
	if !path.IsAbs(v.Destination) {
		return Volume{}, fmt.Errorf("volume %q: %w: the container path must be absolute", s, errdef.ErrInvalid)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return Volume{}, err
	}
	if _, err := os.Stat(src); err != nil {
		return Volume{}, fmt.Errorf("volume %q: %w", s, err)
	}
	v.Source = src
	return v, nil
}

func (v Volume) mount() specs.Mount {
	opts := []string{"rbind", "rprivate"}
	if v.ReadOnly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: v.Destination, Type: "none", Source: v.Source, Options: opts}
}

// Options configure Run and WriteBundle.
type Options struct {
	// Process and namespace choices (command, environment, working
	// directory, user, network, terminal) as package bundle takes them.
	// Hostname defaults to the container's name.
	bundle.Options
	// Name of the container, also its runtime id and its directory in the
	// cache; default "lading-" and 12 random hex digits. A name in use is
	// an error matching errdef.ErrAlreadyExists.
	Name string
	// Volumes are bind-mounted over the image; an image volume (Config.
	// Volumes) that none of them covers gets an anonymous volume: a
	// directory of the container's own, seeded with what the image holds
	// there.
	Volumes []Volume
	// Remove deletes the container's directory (its changes to the root
	// filesystem, its anonymous volumes) once it has exited. Without it
	// they are kept under the cache's containers/NAME.
	Remove bool
	// Runtime runs the container (FindRuntime gives one).
	Runtime *Runtime
	// Cache keeps the unpacked images and the containers' directories.
	Cache *Cache
	// RootfsMode says how the writable root filesystem is made.
	RootfsMode RootfsMode
	// ExecOptions give the container's stdio and signal handling.
	ExecOptions
	// Logger receives debug messages (cache hits, timings); nil discards.
	Logger *slog.Logger
}

// Run runs img (whose blobs f serves) in a new container in the foreground
// and returns its exit code. The image is unpacked into the cache once (by
// chain ID); each run gets a writable tree of its own over the cached one,
// so the cache is never changed.
func Run(ctx context.Context, f content.Fetcher, img *content.LoadedImage, opts Options) (int, error) {
	if opts.Runtime == nil || opts.Cache == nil {
		return -1, fmt.Errorf("run: %w: a runtime and a cache are required", errdef.ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	c, err := prepare(ctx, f, img, opts)
	if err != nil {
		return -1, err
	}
	log.Debug("container ready", "name", c.name, "rootfs", c.rootfs.Mode.String(), "elapsed", time.Since(start))
	code, err := opts.Runtime.Run(ctx, c.dir, c.name, opts.ExecOptions)
	if rerr := c.rootfs.Release(); err == nil && rerr != nil {
		err = rerr
	}
	if opts.Remove {
		unpack.RemoveAll(c.dir)
	}
	return code, err
}

// prepared is a container ready to run: its directory holds config.json,
// and rootfs is its root filesystem.
type prepared struct {
	name, dir string
	rootfs    *Rootfs
}

func prepare(ctx context.Context, f content.Fetcher, img *content.LoadedImage, opts Options) (*prepared, error) {
	name := opts.Name
	if name == "" {
		name = "lading-" + randomHex(6)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	lower, err := opts.Cache.Rootfs(ctx, f, img)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.Cache.Dir, "containers", name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container %s: %w: %s holds its files (remove it, or run with --rm)", name, errdef.ErrAlreadyExists, dir)
		}
		return nil, err
	}
	ok := false
	var rootfs *Rootfs
	defer func() {
		if !ok {
			if rootfs != nil {
				_ = rootfs.Release()
			}
			unpack.RemoveAll(dir)
		}
	}()
	rootfs, err = NewRootfs(ctx, lower, dir, opts.RootfsMode)
	if err != nil {
		return nil, err
	}
	bo := opts.Options
	if bo.Hostname == "" {
		bo.Hostname = name
	}
	bo.RootPath = rootfs.Path
	bo.Rootless = bo.Rootless || os.Geteuid() != 0
	if bo.Rootless && bo.UIDMappings == nil {
		bo.UIDMappings, bo.GIDMappings = rootlessMappings()
	}
	mounts, err := volumeMounts(img.ConfigFile.Config.Volumes, opts.Volumes, rootfs.Path, filepath.Join(dir, "volumes"))
	if err != nil {
		return nil, err
	}
	bo.Mounts = append(slices.Clone(bo.Mounts), mounts...)
	spec, err := bundle.Generate(ctx, img.ConfigFile, rootfs.Path, bo)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Desc.Digest, err)
	}
	if err := bundle.WriteConfig(ctx, dir, spec); err != nil {
		return nil, err
	}
	ok = true
	return &prepared{name: name, dir: dir, rootfs: rootfs}, nil
}

// volumeMounts are the caller's volumes, then an anonymous volume for each
// image volume none of them covers, seeded from the image's tree.
func volumeMounts(imageVolumes map[string]struct{}, vols []Volume, rootfs, anonDir string) ([]specs.Mount, error) {
	var ms []specs.Mount
	covered := map[string]bool{}
	for _, v := range vols {
		ms = append(ms, v.mount())
		covered[v.Destination] = true
	}
	keys := make([]string, 0, len(imageVolumes))
	for k := range imageVolumes {
		keys = append(keys, path.Clean("/"+k))
	}
	slices.Sort(keys)
	for i, dest := range keys {
		if covered[dest] {
			continue
		}
		src := filepath.Join(anonDir, fmt.Sprint(i))
		if err := os.MkdirAll(anonDir, 0o700); err != nil {
			return nil, err
		}
		if err := seedVolume(rootfs, dest, src); err != nil {
			return nil, fmt.Errorf("volume %s: %w", dest, err)
		}
		ms = append(ms, Volume{Source: src, Destination: dest}.mount())
	}
	return ms, nil
}

// seedVolume makes dir an anonymous volume for dest: a copy of what the
// image holds at dest (a directory), or an empty directory.
func seedVolume(rootfs, dest, dir string) error {
	p, err := inroot.Resolve(rootfs, dest)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return copyTree(context.Background(), p, dir)
	}
	return os.Mkdir(dir, 0o755)
}

// WriteBundle writes an OCI runtime bundle for img in dir: dir/rootfs
// unpacked (nothing else in dir is touched) and dir/config.json. Image
// volumes become anonymous volumes in dir/volumes. dir may exist but
// dir/rootfs and dir/config.json must not.
func WriteBundle(ctx context.Context, f content.Fetcher, img *content.LoadedImage, dir string, opts bundle.Options) error {
	if img == nil || img.ConfigFile == nil {
		return fmt.Errorf("bundle: %w: no image", errdef.ErrInvalid)
	}
	for _, name := range []string{"rootfs", "config.json"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("bundle %s: %w: %s exists", dir, errdef.ErrAlreadyExists, name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	opts.Rootless = opts.Rootless || os.Geteuid() != 0
	if err := mutate.Unpack(ctx, f, img, rootfs, mutate.UnpackOptions{Rootless: opts.Rootless}); err != nil {
		unpack.RemoveAll(rootfs)
		return fmt.Errorf("unpack %s: %w", img.Desc.Digest, err)
	}
	// The tree's top is the container's "/".
	if err := os.Chmod(rootfs, 0o755); err != nil {
		return err
	}
	mounts, err := volumeMounts(img.ConfigFile.Config.Volumes, nil, rootfs, filepath.Join(dir, "volumes"))
	if err == nil {
		for i := range mounts {
			// Relative to the bundle, so the bundle can be moved.
			if rel, rerr := filepath.Rel(dir, mounts[i].Source); rerr == nil {
				mounts[i].Source = rel
			}
		}
		opts.Mounts = append(slices.Clone(opts.Mounts), mounts...)
		var spec *specs.Spec
		spec, err = bundle.Generate(ctx, img.ConfigFile, rootfs, opts)
		if err == nil {
			err = bundle.WriteConfig(ctx, dir, spec)
		}
	}
	if err != nil {
		unpack.RemoveAll(rootfs)
		unpack.RemoveAll(filepath.Join(dir, "volumes"))
		return err
	}
	return nil
}
