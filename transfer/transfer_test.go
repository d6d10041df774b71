package transfer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/mutate"
	"github.com/lading-oci/lading/progress"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/server"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/lading-oci/lading/transfer"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func open(t *testing.T, s string, create bool) *transfer.Target {
	t.Helper()
	r, err := ref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := transfer.Open(context.Background(), r, transfer.OpenOptions{Create: create})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// multiImage builds a two-platform index of two-layer images in a layout
// and tags it "multi"; the amd64 image is also tagged "amd64".
func multiImage(t *testing.T, dir string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	st, err := ocilayout.Init(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var descs []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "f"), []byte("a file for "+arch), 0o644); err != nil {
			t.Fatal(err)
		}
		plat := &ocispec.Platform{OS: "linux", Architecture: arch}
		d, err := mutate.Build(ctx, st, src, mutate.BuildOptions{Platform: plat})
		if err != nil {
			t.Fatal(err)
		}
		img, err := content.LoadImage(ctx, st, d, plat)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "g"), []byte("more"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err = mutate.Build(ctx, st, src, mutate.BuildOptions{Base: img})
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
		if arch == "amd64" {
			if err := st.Tag(ctx, d, "amd64"); err != nil {
				t.Fatal(err)
			}
		}
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	data, err := jsonMarshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := st.Push(ctx, d, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, d, "multi"); err != nil {
		t.Fatal(err)
	}
	return d
}

// orderStore records pushes and checks that every document pushed has its
// children in the store already.
type orderStore struct {
	*ocilayout.Store
	t      *testing.T
	mu     sync.Mutex
	pushed []string
}

func (o *orderStore) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	if image.IsManifest(d.MediaType) || image.IsIndex(d.MediaType) {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		kids, err := content.SuccessorsOf(d, data)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if ok, _ := o.Exists(ctx, k); !ok {
				o.t.Errorf("%s pushed before its child %s", d.Digest, k.Digest)
			}
		}
		r = strings.NewReader(string(data))
	}
	o.mu.Lock()
	o.pushed = append(o.pushed, d.MediaType)
	o.mu.Unlock()
	return o.Store.Push(ctx, d, r)
}

func TestCopyChildrenFirst(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	root := multiImage(t, srcDir)
	src := open(t, "oci:"+srcDir+":multi", false)
	dstDir := filepath.Join(t.TempDir(), "dst")
	dst := open(t, "oci:"+dstDir+":copied", true)
	lay, _ := dst.Layout()
	rec := &orderStore{Store: lay, t: t}
	dst.Store = rec
	var mu sync.Mutex
	states := map[progress.State]int{}
	res, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{Concurrency: 2, Progress: func(e progress.Event) {
		mu.Lock()
		states[e.State]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied.Digest != root.Digest || res.Source.Digest != root.Digest || res.Filtered {
		t.Fatalf("copied %+v, want %s", res, root.Digest)
	}
	// 1 index, 2 manifests, 2 configs, 3 distinct layers (the two images
	// share none... each has 2): count what was pushed.
	if len(rec.pushed) < 7 || rec.pushed[len(rec.pushed)-1] != ocispec.MediaTypeImageIndex {
		t.Errorf("pushed %v: the index must come last", rec.pushed)
	}
	if states[progress.Started] != len(rec.pushed) || states[progress.Finished] != len(rec.pushed) {
		t.Errorf("progress %v for %d pushes", states, len(rec.pushed))
	}
	rep, err := lay.Verify(ctx, ocilayout.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("copy does not verify: %v %v", err, rep.Problems)
	}
	if d, err := lay.Resolve(ctx, "copied"); err != nil || d.Digest != root.Digest {
		t.Fatalf("tag: %v %v", d, err)
	}
	// A second copy finds the index present and reads nothing more.
	rec.pushed = nil
	states = map[progress.State]int{}
	if _, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(rec.pushed) != 0 || states[progress.Skipped] != 0 {
		// Progress was not asked for this time.
		t.Errorf("second copy pushed %v", rec.pushed)
	}
}

func TestCopyFailureLeavesNoNewLayout(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	multiImage(t, srcDir)
	// Delete one layer of the source.
	srcLay, err := ocilayout.Open(ctx, srcDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := open(t, "oci:"+srcDir+":amd64", false).Image(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srcLay.Delete(ctx, img.Manifest.Layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	src := open(t, "oci:"+srcDir+":multi", false)
	parent := t.TempDir()
	dstDir := filepath.Join(parent, "new", "layout")
	r, _ := ref.Parse("oci:" + dstDir + ":x")
	dst, err := transfer.Open(ctx, r, transfer.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = transfer.Copy(ctx, src, dst, transfer.CopyOptions{})
	if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), string(img.Manifest.Layers[1].Digest)) {
		t.Fatalf("copy with a missing layer: %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("a failed copy left %v", ents)
	}
	// An existing layout stays, with what it held.
	existing := filepath.Join(t.TempDir(), "existing")
	est, err := ocilayout.Init(ctx, existing)
	if err != nil {
		t.Fatal(err)
	}
	keep, err := mutate.Write(ctx, est, mutate.New(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := est.Tag(ctx, keep, "multi"); err != nil {
		t.Fatal(err)
	}
	est.Close()
	into := open(t, "oci:"+existing+":other", true)
	if _, err := transfer.Copy(ctx, src, into, transfer.CopyOptions{}); err == nil {
		t.Fatal("copy with a missing layer succeeded")
	}
	if d, err := open(t, "oci:"+existing+":multi", false).Resolve(ctx); err != nil || d.Digest != keep.Digest {
		t.Errorf("the existing layout lost its image: %v", err)
	}
}

func TestResolveListTagRemove(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "img")
	root := multiImage(t, dir)
	lay := open(t, "oci:"+dir, false)
	if _, err := lay.Resolve(ctx); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "amd64") {
		t.Errorf("resolve of a layout of several untagged-latest images: %v", err)
	}
	entries, err := transfer.List(ctx, lay)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[1].Tag != "multi" || !slices.Equal(entries[1].Platforms, []string{"linux/amd64", "linux/arm64"}) || entries[1].ImageSize <= 0 {
		t.Fatalf("entries %+v", entries)
	}
	if entries[0].ImageSize <= 0 || entries[1].ImageSize <= entries[0].ImageSize {
		t.Errorf("sizes %d %d", entries[0].ImageSize, entries[1].ImageSize)
	}
	if _, err := transfer.Tag(ctx, open(t, "oci:"+dir+":multi", false), "team/app:v1"); err != nil {
		t.Fatal(err)
	}
	if d, err := open(t, "oci:"+dir+":team/app:v1", false).Resolve(ctx); err != nil || d.Digest != root.Digest {
		t.Fatalf("a tag with / and : does not read back: %v", err)
	}
	if _, err := transfer.Tag(ctx, open(t, "oci:"+dir+":multi", false), "bad tag"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("bad tag: %v", err)
	}
	tags, err := transfer.Remove(ctx, open(t, "oci:"+dir+"@"+root.Digest.String(), false))
	if err != nil || !slices.Equal(tags, []string{"multi", "team/app:v1"}) {
		t.Fatalf("remove by digest: %v %v", tags, err)
	}
	_, err = transfer.Remove(ctx, open(t, "oci:"+dir+":multi", false))
	var nf *errdef.NotFoundError
	if !errors.As(err, &nf) || nf.What != errdef.WhatTag {
		t.Errorf("remove of a removed tag: %v", err)
	}
	if d, err := lay.Resolve(ctx); err != nil || d.Annotations[ocispec.AnnotationRefName] != "amd64" {
		t.Errorf("the only image left: %v %v", d, err)
	}
	if _, err := lay.Select(ctx, &ocispec.Platform{OS: "linux", Architecture: "s390x"}); !errors.As(err, &nf) || nf.What != errdef.WhatPlatform || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("select of a missing platform on a single image: %v", err)
	}
	r, _ := ref.Parse("oci:" + filepath.Join(t.TempDir(), "nothing"))
	if _, err := transfer.Open(ctx, r, transfer.OpenOptions{}); !errors.As(err, &nf) || nf.What != errdef.WhatLayout {
		t.Errorf("open of a missing layout: %v", err)
	}
}

func TestCopyPlatforms(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	root := multiImage(t, srcDir)
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	cp := func(dst string, ps ...ocispec.Platform) (transfer.CopyResult, error) {
		return transfer.Copy(ctx, open(t, "oci:"+srcDir+":multi", false), open(t, "oci:"+filepath.Join(t.TempDir(), dst)+":x", true),
			transfer.CopyOptions{Platforms: ps})
	}
	// One platform: its image.
	res, err := cp("one", arm)
	if err != nil || res.Filtered || !image.IsManifest(res.Copied.MediaType) || res.Copied.Digest == root.Digest {
		t.Fatalf("one platform: %+v %v", res, err)
	}
	// Every platform: the index itself.
	res, err = cp("both", amd, arm)
	if err != nil || res.Filtered || res.Copied.Digest != root.Digest {
		t.Fatalf("every platform: %+v %v", res, err)
	}
	// None matching: the error lists what there is.
	_, err = cp("none", ocispec.Platform{OS: "linux", Architecture: "s390x"})
	var nf *errdef.NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Fatalf("missing platform: %v", err)
	}
}

func TestCopyFilteredIndexAndReferrers(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	root := multiImage(t, srcDir)
	st, err := ocilayout.Open(ctx, srcDir)
	if err != nil {
		t.Fatal(err)
	}
	// A third platform, so two of three make a new index.
	data, _ := st.Resolve(ctx, "multi")
	raw, err := content.ReadAll(ctx, st, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := image.DecodeIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range idx.Manifests {
		idx.Manifests[i].Platform = &ocispec.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[i]}
	}
	extra := idx.Manifests[0]
	extra.Platform = &ocispec.Platform{OS: "linux", Architecture: "riscv64"}
	idx.Manifests = append(idx.Manifests, extra)
	idx.Annotations = map[string]string{"kept": "yes"}
	three := pushJSON(t, st, ocispec.MediaTypeImageIndex, idx)
	if err := st.Tag(ctx, three, "three"); err != nil {
		t.Fatal(err)
	}
	// A signature of the amd64 image, and one of the signature.
	sig := pushArtifact(t, st, idx.Manifests[0], "application/vnd.example.sig")
	pushArtifact(t, st, sig, "application/vnd.example.countersig")
	st.Close()

	dstDir := filepath.Join(t.TempDir(), "dst")
	res, err := transfer.Copy(ctx, open(t, "oci:"+srcDir+":three", false), open(t, "oci:"+dstDir+":two", true), transfer.CopyOptions{
		Platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "riscv64"}}, Referrers: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Filtered || res.Copied.Digest == three.Digest || res.Referrers != 2 {
		t.Fatalf("result %+v", res)
	}
	dst, err := ocilayout.Open(ctx, dstDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, err := content.ReadAll(ctx, dst, res.Copied, 0)
	if err != nil {
		t.Fatal(err)
	}
	gidx, err := image.DecodeIndex(got)
	if err != nil || len(gidx.Manifests) != 2 || gidx.Annotations["kept"] != "yes" {
		t.Fatalf("filtered index %s: %v", got, err)
	}
	if refs, err := dst.Referrers(ctx, idx.Manifests[0], ""); err != nil || len(refs) != 1 || refs[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("referrers in the destination: %+v %v", refs, err)
	}
	if ok, _ := dst.Exists(ctx, root); ok {
		t.Error("the unfiltered index was copied too")
	}
	rep, err := dst.Verify(ctx, ocilayout.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}

// pushArtifact stores an artifact manifest whose subject is subject.
func pushArtifact(t *testing.T, st *ocilayout.Store, subject ocispec.Descriptor, artifactType string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	empty := ocispec.DescriptorEmptyJSON
	if err := st.Push(ctx, empty, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
		Config: empty, Layers: []ocispec.Descriptor{empty}, Subject: &subj}
	return pushJSON(t, st, ocispec.MediaTypeImageManifest, m)
}

func pushJSON(t *testing.T, st *ocilayout.Store, mt string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := st.Push(context.Background(), d, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCopyTagsRootInOnePut: into a registry, the root manifest is stored
// under the tag with one PUT by tag (not by digest and then by tag), and
// everything below it by digest before it.
func TestCopyTagsRootInOnePut(t *testing.T) {
	ctx := context.Background()
	srcDir := filepath.Join(t.TempDir(), "src")
	root := multiImage(t, srcDir)
	st, err := storage.Open(ctx, t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var puts []string
	h := server.New(st, server.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			puts = append(puts, path.Base(r.URL.Path))
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	src := open(t, "oci:"+srcDir+":multi", false)
	dst := open(t, host+"/team/multi:v1", false)
	if _, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(puts) != 3 || puts[2] != "v1" || puts[0] == "v1" || puts[1] == "v1" {
		t.Fatalf("manifest PUTs %v: want the two images by digest, then the index by tag only", puts)
	}
	for _, p := range puts {
		if p == root.Digest.String() {
			t.Fatalf("manifest PUTs %v: the index was also PUT by digest", puts)
		}
	}
	if d, err := dst.Resolve(ctx); err != nil || d.Digest != root.Digest {
		t.Fatalf("v1 resolves to %v (%v), want %s", d.Digest, err, root.Digest)
	}
	// Copied again: the index is present and only the tag is set.
	puts = nil
	dst2 := open(t, host+"/team/multi:v2", false)
	if _, err := transfer.Copy(ctx, src, dst2, transfer.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(puts) != 1 || puts[0] != "v2" {
		t.Fatalf("second copy PUT %v, want only the tag v2", puts)
	}
}
