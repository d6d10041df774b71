package containerfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// cacheVersion changes when what a key covers changes.
const cacheVersion = "lading-build-cache-v1"

// key names a step's result: the parent image, the instruction after
// expansion, and the inputs it reads beyond them.
func (b *builder) key(st *stage, c instructions.Command, inputs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nparent %s\n%s\n", cacheVersion, st.img.Desc.Digest, keyFor(c))
	for _, in := range inputs {
		fmt.Fprintf(h, "%d:%s\n", len(in), in)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (b *builder) cacheFile(key string) string {
	return filepath.Join(b.opts.Cache.Dir, "build", key[:2], key)
}

// cached returns the image recorded for key when all its blobs are still
// in the store, or nil.
func (b *builder) cached(ctx context.Context, key string) *content.LoadedImage {
	if b.opts.NoCache {
		return nil
	}
	data, err := os.ReadFile(b.cacheFile(key))
	if err != nil || len(data) > 1<<16 {
		return nil
	}
	desc, err := image.DecodeDescriptor(data)
	if err != nil {
		return nil
	}
	img, err := content.LoadImage(ctx, b.opts.Store, desc, nil)
	if err != nil {
		b.log.Debug("build cache entry unusable", "key", key, "err", err)
		return nil
	}
	for _, l := range img.Manifest.Layers {
		if ok, err := b.opts.Store.Exists(ctx, l); err != nil || !ok {
			return nil
		}
	}
	return img
}

// record keeps key → desc in the build cache. A failure to record only
// costs a later rebuild.
func (b *builder) record(key string, desc ocispec.Descriptor) {
	d := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	data, err := json.Marshal(d)
	if err != nil {
		return
	}
	name := b.cacheFile(key)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return
	}
	if err := atomicfile.Write(name, data, 0o600, false); err != nil {
		b.log.Debug("build cache: not recorded", "key", key, "err", err)
	}
}

// workTree is a stage's writable root filesystem; chain says which layers
// it holds ("" when it matches no image, after a failed step).
type workTree struct {
	rootfs *container.Rootfs
	dir    string
	chain  string
}

func (t *workTree) release() {
	_ = t.rootfs.Release()
	unpack.RemoveAll(t.dir)
}

// tree returns the stage's working tree, made anew from the cache when it
// does not hold the stage's current layers.
func (b *builder) tree(ctx context.Context, st *stage) (*workTree, error) {
	want := container.ChainKey(st.img.ConfigFile.RootFS.DiffIDs)
	if st.tree != nil && st.tree.chain == want {
		return st.tree, nil
	}
	if st.tree != nil {
		st.tree.release()
		st.tree = nil
	}
	lower, err := b.opts.Cache.Rootfs(ctx, b.opts.Store, st.img)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.workDir, "tree-")
	if err != nil {
		return nil, err
	}
	r, err := container.NewRootfs(ctx, lower, dir, b.opts.RootfsMode)
	if err != nil {
		unpack.RemoveAll(dir)
		return nil, err
	}
	b.log.Debug("working tree", "stage", st.index, "mode", r.Mode.String(), "chain", want)
	st.tree = &workTree{rootfs: r, dir: dir, chain: want}
	return st.tree, nil
}

// argInputs are the ARG values in scope, in declaration order: what a RUN
// sees beyond its image.
func argInputs(st *stage) []string {
	out := make([]string, 0, len(st.order))
	for _, k := range st.order {
		out = append(out, "arg "+k+"="+st.args[k])
	}
	return out
}
