package ocilayout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
)

// FuzzOpen feeds arbitrary oci-layout and index.json files to Open and, when
// it accepts them, to the readers of index.json.
func FuzzOpen(f *testing.F) {
	f.Add(`{"imageLayoutVersion":"1.0.0"}`, `{"schemaVersion":2,"manifests":[]}`, "latest")
	f.Add(`{"imageLayoutVersion":"1.0.0"}`, `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":3,"annotations":{"org.opencontainers.image.ref.name":"x"}}]}`, "sha256:0000000000000000000000000000000000000000000000000000000000000000")
	f.Add(`{"imageLayoutVersion":"1.1"}`, `{"schemaVersion":2,"manifests":null}`, "x")
	f.Add(`[]`, `{}`, "")
	f.Add(`{"imageLayoutVersion":null}`, `{"schemaVersion":2,"manifests":[{"digest":"../../etc/passwd"}]}`, "sha256:../../x")
	f.Fuzz(func(t *testing.T, layout, index, ref string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(layout), 0o644)
		os.WriteFile(filepath.Join(dir, "index.json"), []byte(index), 0o644)
		s, err := ocilayout.Open(context.Background(), dir)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) && !errors.Is(err, errdef.ErrUnsupported) {
				t.Fatalf("open: error %v is neither ErrInvalid nor ErrUnsupported", err)
			}
			return
		}
		ctx := context.Background()
		if _, err := s.Resolve(ctx, ref); err != nil && !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errdef.ErrInvalid) {
			t.Fatalf("resolve %q: %v", ref, err)
		}
		s.Tags(ctx, func([]string) error { return nil })
		if _, err := s.Verify(ctx, ocilayout.VerifyOptions{Workers: 1}); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if _, err := s.GC(ctx, ocilayout.GCOptions{DryRun: true}); err != nil && !errors.Is(err, errdef.ErrInvalid) {
			t.Fatalf("gc: %v", err)
		}
	})
}

// FuzzIngestRef checks that no ingest ref reaches outside ingest/.
func FuzzIngestRef(f *testing.F) {
	for _, s := range []string{"", "abc", "..", "../x", "a/b", ".x", "x..y", "a\x00", "A-b_c.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		s := newLayout(t)
		w, err := s.Ingest(context.Background(), ref)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("ingest %q: %v", ref, err)
			}
			return
		}
		defer w.Abort(context.Background())
		if ref == "" {
			ref = w.Ref() // a fresh ref was made up
		}
		if w.Ref() != ref || ref == "" {
			t.Fatalf("ingest %q has ref %q", ref, w.Ref())
		}
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
		if len(ents) != 1 || ents[0].Name() != ref || strings.ContainsAny(ref, `/\`) {
			t.Fatalf("ingest %q made %v under ingest/", ref, ents)
		}
	})
}
