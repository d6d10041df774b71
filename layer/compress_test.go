package layer

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"
)

func TestCompressRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	block := make([]byte, 1<<16)
	for i := range block {
		block[i] = "abcdefgh"[rng.IntN(8)] // compressible but not trivially
	}
	for _, size := range []int{0, 1, zstdChunk, zstdChunk + 1, 2*zstdChunk + 5} {
		data := bytes.Repeat(block, size/len(block)+1)[:size]
		for _, c := range allCompressions {
			// Whole, and in odd-sized writes: the output must not depend on
			// how the input was cut.
			var whole, pieces bytes.Buffer
			zw, err := Compress(&whole, c)
			must(t, err)
			if _, err := zw.Write(data); err != nil {
				t.Fatal(err)
			}
			must(t, zw.Close())
			must(t, zw.Close()) // a second close is harmless
			zw, err = Compress(&pieces, c)
			must(t, err)
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(100_000))
				if _, err := zw.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			must(t, zw.Close())
			if !bytes.Equal(whole.Bytes(), pieces.Bytes()) {
				t.Errorf("%v, %d bytes: output depends on write sizes", c, size)
			}
			rc, got, err := Decompress(bytes.NewReader(whole.Bytes()))
			must(t, err)
			if c != None && got != c {
				t.Errorf("%v, %d bytes: detected as %v", c, size, got)
			}
			out, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%v, %d bytes: round trip gave %d bytes, %v", c, size, len(out), err)
			}
			if c == Zstd && size > 0 {
				if _, err := exec.LookPath("zstd"); err == nil {
					cmd := exec.Command("zstd", "-dc")
					cmd.Stdin = bytes.NewReader(whole.Bytes())
					out, err := cmd.Output()
					if err != nil || !bytes.Equal(out, data) {
						t.Errorf("zstd -dc of %d bytes: %d bytes, %v", size, len(out), err)
					}
				}
			}
		}
	}
}

func TestCompressWriteError(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3*zstdChunk)
	for _, c := range allCompressions {
		zw, err := Compress(failWriter{}, c)
		must(t, err)
		_, werr := zw.Write(data)
		cerr := zw.Close()
		if !errors.Is(werr, errFail) && !errors.Is(cerr, errFail) {
			t.Errorf("%v: write error %v, close error %v; want the writer's", c, werr, cerr)
		}
	}
}
