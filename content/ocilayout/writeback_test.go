package ocilayout

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWritebackStartsAsTheFileGrows checks that a blob file being written
// is handed to the kernel for writeback every writebackChunk bytes.
func TestWritebackStartsAsTheFileGrows(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &onlyWriter{w: f, wb: writeback{f: f}}
	chunk := make([]byte, 3<<20)
	var starts []int64
	for i := 0; i < 7; i++ {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, w.wb.started)
	}
	want := []int64{0, 0, 9 << 20, 9 << 20, 9 << 20, 18 << 20, 18 << 20}
	if fmt.Sprint(starts) != fmt.Sprint(want) {
		t.Errorf("writeback started at %v, want %v", starts, want)
	}
}
