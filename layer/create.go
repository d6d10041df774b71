package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/lading-oci/lading/progress"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options control how a layer is written by Create and CreateDiff.
//
// The zero value writes an uncompressed layer that keeps every attribute of
// the filesystem except access and change times, which are never written.
type Options struct {
	// Compression of the blob written to the output; the zero value and
	// None both write a plain tar.
	Compression Compression
	// Timestamp, when set, clamps every modification time later than it to
	// it, with the semantics of SOURCE_DATE_EPOCH. Times are always written
	// with one-second precision, so a layer built with a Timestamp from the
	// same tree is byte-for-byte the same whatever the times on disk.
	Timestamp *time.Time
	// UID and GID, when set, replace the owner of every entry. Nil keeps the
	// owner found on the filesystem.
	UID, GID *int
	// Exclude lists paths to leave out, relative to the directory, in the
	// syntax and with the semantics of a .dockerignore file (docker's
	// matching rules: "**", "!" exceptions, later patterns win). A
	// directory left out is left out whole unless an exception brings back
	// something below it, which is then written with its directories.
	Exclude []string
	// Progress, when set, receives the layer's progress: Started with the
	// estimated size of the uncompressed tar, Running as it is written,
	// Finished. Estimating walks the directory once more.
	Progress progress.Func
}

// Result describes a layer that was written.
type Result struct {
	// Descriptor is the blob as written: media type (from the
	// compression), sha256 digest and size of the compressed bytes.
	Descriptor ocispec.Descriptor
	// DiffID is the sha256 digest of the uncompressed tar, the value listed
	// in an image configuration's rootfs.diff_ids.
	DiffID digest.Digest
	// UncompressedSize is the length of the uncompressed tar.
	UncompressedSize int64
}

// TimestampFromEnv reads SOURCE_DATE_EPOCH (decimal seconds since the Unix
// epoch). It returns nil when the variable is unset or empty.
func TimestampFromEnv() (*time.Time, error) {
	v := strings.TrimSpace(os.Getenv("SOURCE_DATE_EPOCH"))
	if v == "" {
		return nil, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w: want a non-negative decimal number of seconds", v, errdef.ErrInvalid)
	}
	t := time.Unix(sec, 0).UTC()
	return &t, nil
}

// Create writes the tree under dir as one layer to w, compressed with
// opts.Compression, in a single streaming pass that also computes the
// digests of the result.
//
// Entries are relative to dir (which is not itself an entry), without a
// leading "./" or "/"; directories end in "/". They are written depth first
// with the entries of each directory in byte order of their names, so
// parents come before their children and the output depends on nothing but
// the tree. Regular files, directories, symbolic links, hard links (a second
// name of a file already written becomes a link to the first), character
// and block devices and FIFOs are written with their mode, owner and
// extended attributes (as SCHILY.xattr PAX records); user and group names
// are left empty. Sockets are skipped. Entries whose names begin with
// ".wh." are written as they are, so a directory can carry whiteouts.
//
// A regular file whose size changes while it is read makes Create fail
// with an error naming it. On error, w may have received part of a layer.
func Create(ctx context.Context, dir string, w io.Writer, opts Options) (Result, error) {
	p, err := newPacker(w, opts)
	if err != nil {
		return Result{}, err
	}
	fw, err := newFSWalker(ctx, dir, p, opts)
	if err != nil {
		p.abort()
		return Result{}, err
	}
	defer fw.close()
	p.track(dir, opts)
	if err := fw.create(); err != nil {
		p.abort()
		p.done(err)
		return Result{}, err
	}
	res, err := p.finish()
	p.done(err)
	return res, err
}

// packer is the output side of a layer: a tar writer whose bytes are hashed
// and counted on their way into the compressor, whose output is hashed and
// counted on its way to the caller's writer.
type packer struct {
	tw   *tar.Writer
	raw  hashCounter
	zw   io.WriteCloser
	out  hashCounter
	comp Compression

	progress progress.Func
	total    int64
}

// progressID names a layer being written in progress events.
const progressID = "layer"

// track starts reporting progress, when asked for, with the estimated tar
// size of dir.
func (p *packer) track(dir string, opts Options) {
	if opts.Progress == nil {
		return
	}
	p.progress = opts.Progress
	p.total = estimateTar(dir)
	p.raw.report = func(n int64) {
		p.progress.Report(progress.Event{ID: progressID, Name: "layer", State: progress.Running, Current: n, Total: p.total})
	}
	p.progress.Start(progressID, "layer", p.total)
}

// done reports the end of the layer.
func (p *packer) done(err error) {
	p.progress.Finish(progressID, "layer", p.raw.n, p.total, err)
}

// estimateTar estimates the tar size of the tree under dir: a header per
// entry and each file's content in 512-byte blocks; -1 if it cannot be
// walked.
func estimateTar(dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n += 512
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += (fi.Size() + 511) &^ 511
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n + 1024
}

// hashCounter hashes (unless h is nil) and counts what passes through it
// to next.
type hashCounter struct {
	h    hash.Hash
	n    int64
	next io.Writer
	// report, when set, is told the count after each write.
	report func(n int64)
}

func (c *hashCounter) Write(b []byte) (int, error) {
	n, err := c.next.Write(b)
	if c.h != nil {
		c.h.Write(b[:n])
	}
	c.n += int64(n)
	if c.report != nil {
		c.report(c.n)
	}
	return n, err
}

func newPacker(w io.Writer, opts Options) (*packer, error) {
	comp := opts.Compression
	if comp == 0 {
		comp = None
	}
	p := &packer{comp: comp}
	p.out = hashCounter{next: w}
	if comp != None {
		// Uncompressed, the blob is the tar: one hash serves both.
		p.out.h = sha256.New()
	}
	zw, err := Compress(&p.out, comp)
	if err != nil {
		return nil, err
	}
	p.zw = zw
	p.raw = hashCounter{h: sha256.New(), next: zw}
	p.tw = tar.NewWriter(&p.raw)
	return p, nil
}

// abort releases the compressor after a failure.
func (p *packer) abort() {
	_ = p.zw.Close()
}

// finish ends the tar stream, flushes the compressor and reports the blob.
func (p *packer) finish() (Result, error) {
	if err := p.tw.Close(); err != nil {
		p.abort()
		return Result{}, fmt.Errorf("layer: closing tar stream: %w", err)
	}
	if err := p.zw.Close(); err != nil {
		return Result{}, fmt.Errorf("layer: flushing %v compressor: %w", p.comp, err)
	}
	diffID := digest.NewDigestFromBytes(digest.SHA256, p.raw.h.Sum(nil))
	blob := diffID
	if p.out.h != nil {
		blob = digest.NewDigestFromBytes(digest.SHA256, p.out.h.Sum(nil))
	}
	return Result{
		Descriptor: ocispec.Descriptor{
			MediaType: MediaType(p.comp),
			Digest:    blob,
			Size:      p.out.n,
		},
		DiffID:           diffID,
		UncompressedSize: p.raw.n,
	}, nil
}

// copyBufSize is the size of the buffers file contents are read through.
const copyBufSize = 1 << 20

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// paxXattr prefixes the PAX record of an extended attribute.
const paxXattr = "SCHILY.xattr."
