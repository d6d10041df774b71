package progress

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestNilFuncReportsNothing(t *testing.T) {
	var f Func
	f.Start("a", "layer", 10)
	f.Finish("a", "layer", 10, 10, nil)
	f.Skip("a", "layer", 10)
	c := f.Reader(strings.NewReader("hello"), "a", "layer", 5)
	if b, err := io.ReadAll(c); err != nil || string(b) != "hello" || c.N() != 5 {
		t.Fatalf("read %q %v %d", b, err, c.N())
	}
}

func TestEvents(t *testing.T) {
	var got []Event
	f := Func(func(e Event) { got = append(got, e) })
	f.Start("d", "blob", 6)
	c := f.Reader(strings.NewReader("abcdef"), "d", "blob", 6)
	buf := make([]byte, 4)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	boom := errors.New("boom")
	f.Finish("d", "blob", c.N(), 6, boom)
	f.Skip("e", "blob", 3)
	want := []State{Started, Running, Running, Failed, Skipped}
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for i, e := range got {
		if e.State != want[i] {
			t.Errorf("event %d: %s, want %s", i, e.State, want[i])
		}
	}
	if got[2].Current != 6 || got[3].Err != boom || got[4].Current != 3 {
		t.Errorf("events %+v", got)
	}
}
