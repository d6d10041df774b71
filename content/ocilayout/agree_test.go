package ocilayout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// agreeBlobs are the blobs FuzzReadersAgree's documents can name.
var agreeBlobs = func() []string {
	var out []string
	for i := range 4 {
		out = append(out, fmt.Sprintf(`{"blob":%d}`, i))
	}
	return out
}()

func agreeDesc(i int) string {
	b := agreeBlobs[i]
	return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, digest.FromString(b), len(b))
}

// FuzzReadersAgree checks that every reader of a manifest sees the same
// references: the image package's decoder, content.SuccessorsOf, garbage
// collection (what it keeps) and verification (what it finds missing) —
// and that a manifest the decoder accepts means the same to an
// encoding/json reader, which matches keys without regard to case. It is
// the property that keeps "layers" and "Layers" from naming different
// blobs to different tools.
func FuzzReadersAgree(f *testing.F) {
	cfg := fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d}`, digest.FromString(agreeBlobs[0]), len(agreeBlobs[0]))
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s,%s]}`, cfg, agreeDesc(1), agreeDesc(2)))
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"config":%s,"layers":[%s],"Layers":[%s]}`, cfg, agreeDesc(1), agreeDesc(3)))
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"config":%s,"Layers":[%s]}`, cfg, agreeDesc(3)))
	// encoding/json folds the long s (U+017F) to s.
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"config":%s,"layers":[%s],"layerſ":[%s]}`, cfg, agreeDesc(1), agreeDesc(3)))
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"config":%s,"layers":[%s,{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%064d","size":1}]}`, cfg, agreeDesc(1), 0))
	f.Add(fmt.Sprintf(`{"schemaVersion":2,"config":%s,"layers":[],"subject":%s,"annotations":{"org.opencontainers.image.base.digest":""}}`, cfg, agreeDesc(2)))
	f.Fuzz(func(t *testing.T, doc string) {
		data := []byte(doc)
		m, err := image.DecodeManifest(data)
		if err != nil {
			return
		}
		want := []digest.Digest{m.Config.Digest}
		for _, l := range m.Layers {
			want = append(want, l.Digest)
		}
		if m.Subject != nil {
			want = append(want, m.Subject.Digest)
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}

		// content.SuccessorsOf
		kids, err := content.SuccessorsOf(desc, data)
		if err != nil {
			t.Fatalf("the decoder accepts the manifest, SuccessorsOf does not: %v", err)
		}
		var got []digest.Digest
		for _, k := range kids {
			got = append(got, k.Digest)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("SuccessorsOf sees %v, the decoder %v", got, want)
		}

		// An encoding/json reader.
		var js ocispec.Manifest
		if err := json.Unmarshal(data, &js); err == nil {
			jw := []digest.Digest{js.Config.Digest}
			for _, l := range js.Layers {
				jw = append(jw, l.Digest)
			}
			if js.Subject != nil {
				jw = append(jw, js.Subject.Digest)
			}
			if !slices.Equal(jw, want) {
				t.Fatalf("encoding/json sees %v, the decoder %v", jw, want)
			}
		}

		// GC and verify, in a layout holding the manifest (tagged) and the
		// fixture blobs.
		ctx := context.Background()
		s := newLayout(t)
		for _, b := range agreeBlobs {
			pushJSONBytes(t, s, []byte(b))
		}
		if err := s.Push(ctx, desc, bytesReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(ctx, desc, "x"); err != nil {
			t.Fatal(err)
		}
		rep, err := s.GC(ctx, ocilayout.GCOptions{DryRun: true})
		if err != nil {
			t.Fatalf("gc of a manifest the decoder reads: %v", err)
		}
		removed := map[digest.Digest]bool{}
		for _, r := range rep.Blobs {
			removed[r.Digest] = true
		}
		for _, b := range agreeBlobs {
			d := digest.FromString(b)
			if removed[d] == slices.Contains(want, d) {
				t.Fatalf("gc would remove %s: %v; the decoder's references are %v", d, removed[d], want)
			}
		}
		vrep, err := s.Verify(ctx, ocilayout.VerifyOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		missing := map[digest.Digest]bool{}
		for _, p := range vrep.Problems {
			if errors.Is(p.Err, errdef.ErrNotFound) {
				missing[p.Digest] = true
			}
		}
		for _, d := range want {
			known := slices.ContainsFunc(agreeBlobs, func(b string) bool { return digest.FromString(b) == d })
			if content.CheckDigest(d) == nil && missing[d] == known {
				t.Fatalf("verify: %s missing=%v, but it is %v that the layout holds it", d, missing[d], known)
			}
		}
	})
}
