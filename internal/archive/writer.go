package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lading-oci/lading/errdef"
)

const blockSize = 512

// ErrClosed is returned by a Writer used after Commit or Abort.
var ErrClosed = errdef.ErrClosed

// Writer writes a new tar archive that replaces path only when committed.
// It is not safe for concurrent use, except ReadAt, which may be called
// while members are being added.
type Writer struct {
	path  string
	f     *os.File
	named string // the temporary file's name, "" when it has none
	off   int64  // end of the last complete member
	busy  bool   // a Pending member is open
	done  bool
	names map[string]*Member
}

// Create starts an archive that will be committed to path. The data goes to
// a temporary file in path's directory; path itself is not touched until
// Commit. The directory must exist.
func Create(path string) (*Writer, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("create archive %s: directory %s: %w", path, dir, errdef.ErrNotFound)
		}
		return nil, fmt.Errorf("create archive %s: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("create archive %s: %s is not a directory: %w", path, dir, errdef.ErrInvalid)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("create archive %s: %w: a directory is in the way", path, errdef.ErrInvalid)
	}
	w := &Writer{path: path, names: make(map[string]*Member)}
	f, err := openUnnamed(dir)
	if err != nil {
		f, err = os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
		if err != nil {
			return nil, fmt.Errorf("create archive %s: %w", path, err)
		}
		w.named = f.Name()
	}
	w.f = f
	return w, nil
}

// Path returns the file the archive is committed to.
func (w *Writer) Path() string { return w.path }

// Offset returns the end of the last complete member.
func (w *Writer) Offset() int64 { return w.off }

// ReadAt reads from the archive written so far.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	return w.f.ReadAt(p, off)
}

// Open returns a reader of a member written so far.
func (w *Writer) Open(m *Member) *io.SectionReader {
	return io.NewSectionReader(w.f, m.Offset, m.Size)
}

// Member returns the member written under name.
func (w *Writer) Member(name string) (*Member, bool) {
	m, ok := w.names[name]
	return m, ok
}

func (w *Writer) usable() error {
	if w.done {
		return ErrClosed
	}
	if w.busy {
		return errors.New("archive writer: a member of unknown size is being written")
	}
	return nil
}

// header formats a tar header for a member.
func header(name string, typ byte, size int64, format tar.Format) ([]byte, error) {
	hdr := &tar.Header{
		Typeflag: typ,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   format,
	}
	if typ == tar.TypeDir {
		hdr.Name += "/"
		hdr.Mode = 0o755
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("member %q: %w", name, err)
	}
	return buf.Bytes(), nil
}

func (w *Writer) checkName(name string) error {
	c, err := CleanName(name)
	if err != nil {
		return err
	}
	if c != name || c == "." {
		return fmt.Errorf("member %q: %w: not a clean name", name, errdef.ErrInvalid)
	}
	if _, dup := w.names[name]; dup {
		return fmt.Errorf("member %q: %w", name, errdef.ErrAlreadyExists)
	}
	return nil
}

// AddDir adds a directory entry. Adding one that exists does nothing.
func (w *Writer) AddDir(name string) error {
	if err := w.usable(); err != nil {
		return err
	}
	if m, ok := w.names[name]; ok && m.Type == tar.TypeDir {
		return nil
	}
	if err := w.checkName(name); err != nil {
		return err
	}
	hdr, err := header(name, tar.TypeDir, 0, tar.FormatUnknown)
	if err != nil {
		return err
	}
	if _, err := w.f.WriteAt(hdr, w.off); err != nil {
		return w.fail(w.off, fmt.Errorf("write %s: %w", w.path, err))
	}
	w.names[name] = &Member{Name: name, Type: tar.TypeDir, Offset: w.off + int64(len(hdr))}
	w.off += int64(len(hdr))
	return nil
}

// AddBytes adds a regular file holding data.
func (w *Writer) AddBytes(ctx context.Context, name string, data []byte) (*Member, error) {
	return w.AddFile(ctx, name, int64(len(data)), bytes.NewReader(data))
}

// AddFile adds a regular file of size bytes read from r, which must end
// after exactly that many bytes (errdef.ErrSizeMismatch otherwise). r is
// read to its end, so a verifying reader reports a mismatch there. On any
// error the member is removed again.
func (w *Writer) AddFile(ctx context.Context, name string, size int64, r io.Reader) (*Member, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	if err := w.checkName(name); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("member %q: %w: negative size %d", name, errdef.ErrInvalid, size)
	}
	start := w.off
	hdr, err := header(name, tar.TypeReg, size, tar.FormatUnknown)
	if err != nil {
		return nil, err
	}
	if _, err := w.f.WriteAt(hdr, start); err != nil {
		return nil, w.fail(start, fmt.Errorf("write %s: %w", w.path, err))
	}
	data := start + int64(len(hdr))
	ow := &offsetWriter{f: w.f, off: data}
	n, err := io.CopyBuffer(ow, ctxReader{ctx, io.LimitReader(r, size+1)}, make([]byte, 1<<20))
	if err == nil && n != size {
		err = fmt.Errorf("member %q: %w: got %d bytes, want %d", name, errdef.ErrSizeMismatch, n, size)
	}
	if err == nil && n == size {
		// Read on to the end, so that r can verify what it gave.
		var one [1]byte
		if k, rerr := io.ReadFull(r, one[:]); k > 0 {
			err = fmt.Errorf("member %q: %w: more than the %d bytes declared", name, errdef.ErrSizeMismatch, size)
		} else if rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		}
	}
	if err != nil {
		return nil, w.fail(start, err)
	}
	end, err := w.pad(data + size)
	if err != nil {
		return nil, w.fail(start, err)
	}
	m := &Member{Name: name, Type: tar.TypeReg, Offset: data, Size: size}
	w.names[name] = m
	w.off = end
	return m, nil
}

// pad writes the zeros that fill the block ending at off and returns the
// end of the block.
func (w *Writer) pad(off int64) (int64, error) {
	rem := off % blockSize
	if rem == 0 {
		return off, nil
	}
	zeros := make([]byte, blockSize-rem)
	if _, err := w.f.WriteAt(zeros, off); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	return off + int64(len(zeros)), nil
}

// fail removes everything from off on and returns err.
func (w *Writer) fail(off int64, err error) error {
	if terr := w.f.Truncate(off); terr != nil {
		return errors.Join(err, fmt.Errorf("roll back %s: %w", w.path, terr))
	}
	return err
}

// Pending is a member whose size and name are set when it ends, for data
// produced as it is written (a layer decompressed on the way).
type Pending struct {
	w     *Writer
	start int64
	ow    offsetWriter
	done  bool
}

// Begin starts a member of unknown size. Nothing else can be added until
// it is finished or cancelled.
func (w *Writer) Begin() (*Pending, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	w.busy = true
	return &Pending{w: w, start: w.off, ow: offsetWriter{f: w.f, off: w.off + blockSize}}, nil
}

// Write appends to the member.
func (p *Pending) Write(b []byte) (int, error) {
	if p.done {
		return 0, ErrClosed
	}
	return p.ow.Write(b)
}

// Size returns the bytes written so far.
func (p *Pending) Size() int64 { return p.ow.off - p.start - blockSize }

// Finish names the member and writes its header. A name that exists
// already (or is not clean) cancels the member and returns an error
// matching errdef.ErrAlreadyExists (or errdef.ErrInvalid).
func (p *Pending) Finish(name string) (*Member, error) {
	if p.done {
		return nil, ErrClosed
	}
	w := p.w
	if err := w.checkName(name); err != nil {
		p.Cancel()
		return nil, err
	}
	size := p.Size()
	// The GNU format keeps the header in one block whatever the size
	// (base-256 numbers past 8 GiB), so it fits the space reserved; names
	// must fit its 100 bytes.
	hdr, err := header(name, tar.TypeReg, size, tar.FormatGNU)
	if err == nil && len(hdr) != blockSize {
		err = fmt.Errorf("member %q: %w: name too long for a member of unknown size", name, errdef.ErrInvalid)
	}
	if err != nil {
		p.Cancel()
		return nil, err
	}
	if _, err := w.f.WriteAt(hdr, p.start); err != nil {
		p.Cancel()
		return nil, fmt.Errorf("write %s: %w", w.path, err)
	}
	end, err := w.pad(p.ow.off)
	if err != nil {
		p.Cancel()
		return nil, err
	}
	p.done, w.busy = true, false
	m := &Member{Name: name, Type: tar.TypeReg, Offset: p.start + blockSize, Size: size}
	w.names[name] = m
	w.off = end
	return m, nil
}

// Cancel drops the member. It is a no-op after Finish or Cancel.
func (p *Pending) Cancel() error {
	if p.done {
		return nil
	}
	p.done, p.w.busy = true, false
	return p.w.fail(p.start, nil)
}

// offsetWriter writes at increasing offsets of a file. It has no ReadFrom,
// so io.CopyBuffer uses the buffer it is given.
type offsetWriter struct {
	f   *os.File
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.f.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// Commit ends the archive, syncs it and gives it its name, replacing any
// file there. The Writer is closed afterwards, whatever the outcome; on
// error path is left as it was.
func (w *Writer) Commit(ctx context.Context) error {
	if err := w.usable(); err != nil {
		return err
	}
	w.done = true
	err := w.commit(ctx)
	if err != nil {
		w.discard()
		return fmt.Errorf("commit archive %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(make([]byte, 2*blockSize), w.off); err != nil {
		return err
	}
	if err := w.f.Chmod(0o644); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	dir := filepath.Dir(w.path)
	if w.named == "" {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(dir, "."+filepath.Base(w.path)+"-"+hex.EncodeToString(rnd[:])+".tmp")
		if err := linkUnnamed(w.f, tmp); err != nil {
			return err
		}
		w.named = tmp
	}
	if err := os.Rename(w.named, w.path); err != nil {
		return err
	}
	w.named = ""
	if err := w.f.Close(); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// discard closes and removes the temporary file.
func (w *Writer) discard() error {
	err := w.f.Close()
	if w.named != "" {
		if rerr := os.Remove(w.named); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		w.named = ""
	}
	return err
}

// Abort drops the archive: nothing is left at path (an existing file there
// is kept as it was). It is a no-op after Commit or Abort.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.discard()
}
