package analyze

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// summary renders a diff as "+p", "-p" and "Mp(a,b)" items for comparison.
func summary(d *Comparison) []string {
	var out []string
	for _, e := range d.Added {
		out = append(out, "+"+e.Path)
	}
	for _, e := range d.Removed {
		out = append(out, "-"+e.Path)
	}
	for _, e := range d.Changed {
		out = append(out, "M"+e.Path+"("+strings.Join(e.Changes, ",")+")")
	}
	return out
}

func TestCompare(t *testing.T) {
	base := L(dir("etc"), fileC("etc/conf", "aaaa"), symlink("etc/link", "conf"), dir("bin"), fileC("bin/tool", "tool"))
	tests := []struct {
		name string
		a, b [][]ent
		want []string
	}{
		{name: "identical images", a: [][]ent{base}, b: [][]ent{base}},
		{
			name: "same filesystem from different layers",
			a:    [][]ent{base},
			b:    [][]ent{L(dir("etc"), fileC("etc/conf", "zz"), symlink("etc/link", "conf")), L(dir("bin"), fileC("bin/tool", "tool"), fileC("etc/conf", "aaaa"))},
		},
		{
			name: "added directory lists every path",
			a:    [][]ent{base},
			b:    [][]ent{base, L(dir("opt"), dir("opt/x"), fileC("opt/x/y", "1"))},
			want: []string{"+opt", "+opt/x", "+opt/x/y"},
		},
		{
			name: "removed directory lists every path",
			a:    [][]ent{base},
			b:    [][]ent{base, L(wh("bin"))},
			want: []string{"-bin", "-bin/tool"},
		},
		{
			name: "content change with the same size",
			a:    [][]ent{base},
			b:    [][]ent{base, L(fileC("etc/conf", "bbbb"))},
			want: []string{"Metc/conf(content)"},
		},
		{
			name: "content and size change",
			a:    [][]ent{base},
			b:    [][]ent{base, L(fileC("etc/conf", "longer"))},
			want: []string{"Metc/conf(content,size)"},
		},
		{
			name: "mode change",
			a:    [][]ent{base},
			b:    [][]ent{base, L(fileC("bin/tool", "tool").withMode(0o755))},
			want: []string{"Mbin/tool(mode)"},
		},
		{
			name: "owner change",
			a:    [][]ent{base},
			b:    [][]ent{base, L(dir("etc").withUID(1000))},
			want: []string{"Metc(owner)"},
		},
		{
			name: "symlink retarget",
			a:    [][]ent{base},
			b:    [][]ent{base, L(symlink("etc/link", "other"))},
			want: []string{"Metc/link(link)"},
		},
		{
			name: "type change and the new children",
			a:    [][]ent{base},
			b:    [][]ent{base, L(dir("etc/conf"), fileC("etc/conf/a", "1"))},
			want: []string{"+etc/conf/a", "Metc/conf(type)"},
		},
		{
			name: "type change and the old children",
			a:    [][]ent{base},
			b:    [][]ent{base, L(fileC("bin", "now a file"))},
			want: []string{"-bin/tool", "Mbin(type)"},
		},
		{
			name: "hardlink compared by content",
			a:    [][]ent{L(fileC("a", "same"), fileC("b", "same"))},
			b:    [][]ent{L(fileC("a", "same"), hardlink("b", "a"))},
		},
		{
			name: "opaque directory",
			a:    [][]ent{base},
			b:    [][]ent{base, L(dir("etc"), opq("etc"), fileC("etc/conf", "aaaa"))},
			want: []string{"-etc/link"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Compare(context.Background(), image(t, tc.a...), image(t, tc.b...), CompareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(rep); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("diff:\n got %q\nwant %q", got, tc.want)
			}
			// The reverse diff swaps added and removed.
			rev, err := Compare(context.Background(), image(t, tc.b...), image(t, tc.a...), CompareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rev.Added) != len(rep.Removed) || len(rev.Removed) != len(rep.Added) || len(rev.Changed) != len(rep.Changed) {
				t.Errorf("reverse diff %q does not mirror %q", summary(rev), summary(rep))
			}
		})
	}
}

func TestDiffEntries(t *testing.T) {
	a := image(t, L(dir("d"), fileC("d/f", "abc")))
	b := image(t, L(dir("d"), fileC("d/f", "abc").withMode(0o4755), symlink("d/s", "f"), dir("e").withMode(0o700)))
	rep, err := Compare(context.Background(), a, b, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Comparison{
		Added: []Difference{
			{Path: "d/s", PathState: PathState{Type: TypeSymlink, Mode: Mode(fs.ModeSymlink | 0o644), Link: "f"}},
			{Path: "e", PathState: PathState{Type: TypeDir, Mode: Mode(fs.ModeDir | 0o700)}},
		},
		Removed: []Difference{},
		Changed: []Difference{{Path: "d/f", PathState: PathState{Type: TypeFile, Size: 3, Mode: Mode(fs.ModeSetuid | 0o755)}, Changes: []string{DiffMode},
			Old: &PathState{Type: TypeFile, Size: 3, Mode: 0o644}}},
	}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("got  %+v\nwant %+v", rep, want)
	}
	// In JSON, modes are permission strings, with the old value beside the
	// new one.
	data, err := json.Marshal(rep.Changed[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"mode":"urwxr-xr-x"`) || !strings.Contains(string(data), `"old":{"type":"file","size":3,"mode":"-rw-r--r--"`) {
		t.Errorf("JSON %s", data)
	}
}

func TestDiffReadsSharedLayersOnce(t *testing.T) {
	var baseOpens, aOpens atomic.Int32
	base := blobLayer(tarBytes(t, dir("usr"), fileC("usr/big", strings.Repeat("b", 1<<16))), &baseOpens)
	top := blobLayer(tarBytes(t, fileC("app", "v1")), &aOpens)
	a := []Layer{base, top}
	b := []Layer{base, blobLayer(tarBytes(t, fileC("app", "v2"), wh("usr/big")), nil)}
	rep, err := Compare(context.Background(), a, b, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(rep), []string{"-usr/big", "Mapp(content)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("diff %q, want %q", got, want)
	}
	if baseOpens.Load() != 1 || aOpens.Load() != 1 {
		t.Errorf("shared base opened %d times, top of a %d times; want 1 and 1", baseOpens.Load(), aOpens.Load())
	}
	// Entirely shared images: an empty diff, each layer read once.
	baseOpens.Store(0)
	rep, err = Compare(context.Background(), []Layer{base}, []Layer{base}, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(summary(rep)) != 0 || baseOpens.Load() != 1 {
		t.Errorf("identical images: diff %q, base opened %d times", summary(rep), baseOpens.Load())
	}
}

func TestDiffErrors(t *testing.T) {
	ok := image(t, L(fileC("a", "1")))
	if _, err := Compare(context.Background(), ok, append(ok, failingLayer()), CompareOptions{}); !errors.Is(err, errOpen) {
		t.Errorf("failing layer of b: err = %v", err)
	}
	if _, err := Compare(context.Background(), []Layer{failingLayer()}, []Layer{failingLayer()}, CompareOptions{}); !errors.Is(err, errOpen) {
		t.Errorf("failing shared layer: err = %v", err)
	}
}
