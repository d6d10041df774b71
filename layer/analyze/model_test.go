package analyze

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type modelFile struct {
	typ  FileType
	size int64
}

// modelFS is a deliberately simple filesystem (a flat map, prefix scans)
// that applies layers by the rules of image-spec layer.md, to check the
// tree against on random layers.
type modelFS map[string]modelFile

func (m modelFS) removeTree(p string, touched map[string]bool) {
	for k := range m {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(m, k)
			touched[k] = true
		}
	}
}

// apply applies one layer and returns the paths it touched.
func (m modelFS) apply(es []ent) map[string]bool {
	touched := map[string]bool{}
	for _, e := range es { // whiteouts first: they only remove lower entries
		dir, base := split(e.name)
		switch {
		case base == ".wh..wh..opq":
			for k := range m {
				if strings.HasPrefix(k, dir+"/") {
					delete(m, k)
					touched[k] = true
				}
			}
		case strings.HasPrefix(base, ".wh."):
			m.removeTree(join(dir, strings.TrimPrefix(base, ".wh.")), touched)
		}
	}
	for _, e := range es {
		if _, base := split(e.name); strings.HasPrefix(base, ".wh.") {
			continue
		}
		parts := strings.Split(e.name, "/")
		for i := 1; i < len(parts); i++ {
			a := strings.Join(parts[:i], "/")
			if f, ok := m[a]; !ok || f.typ != TypeDir {
				m.removeTree(a, touched)
				m[a] = modelFile{typ: TypeDir}
				touched[a] = true
			}
		}
		f := modelFile{typ: TypeDir}
		if e.typ != '5' {
			f = modelFile{typ: TypeFile, size: int64(len(e.body))}
		}
		touched[e.name] = true
		if old, ok := m[e.name]; ok && old.typ == TypeDir && f.typ == TypeDir {
			continue
		}
		m.removeTree(e.name, touched)
		m[e.name] = f
	}
	return touched
}

func randomLayer(r *rand.Rand) []ent {
	names := []string{"a", "b", "c"}
	var es []ent
	for range r.IntN(8) + 1 {
		depth := r.IntN(3) + 1
		parts := make([]string, depth)
		for i := range parts {
			parts[i] = names[r.IntN(len(names))]
		}
		p := strings.Join(parts, "/")
		switch r.IntN(6) {
		case 0, 1:
			es = append(es, file(p, r.IntN(50)))
		case 2:
			es = append(es, dir(p))
		case 3, 4:
			es = append(es, wh(p))
		case 5:
			es = append(es, opq(p))
		}
	}
	return es
}

func TestAnalyzeMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		layers := make([][]ent, r.IntN(4)+1)
		for i := range layers {
			layers[i] = randomLayer(r)
		}
		rep, err := Analyze(context.Background(), image(t, layers...), Options{Files: true})
		if err != nil {
			t.Fatal(err)
		}
		m := modelFS{}
		var total int64
		for i, es := range layers {
			before := maps.Clone(m)
			touched := m.apply(es)
			var want counts
			for _, e := range es {
				if _, base := split(e.name); e.typ == '0' && !strings.HasPrefix(base, ".wh.") {
					want.size += int64(len(e.body))
				}
			}
			total += want.size
			for p := range touched {
				b, inBefore := before[p]
				a, inAfter := m[p]
				switch {
				case inBefore && inAfter:
					want.changed++
					want.changedB += a.size
				case inAfter:
					want.added++
					want.addedB += a.size
				case inBefore:
					want.removed++
					want.remB += b.size
				}
			}
			got := countsOf(rep.Layers[i])
			got.wasted = 0
			if got != want {
				t.Fatalf("iteration %d, layer %d of %s:\n got %+v\nwant %+v", iter, i, fmt.Sprint(layers), got, want)
			}
		}
		var final int64
		var paths []string
		for p, f := range m {
			final += f.size
			paths = append(paths, p)
		}
		slices.Sort(paths)
		if rep.TotalBytes != total || rep.FinalBytes != final {
			t.Fatalf("iteration %d: total/final %d/%d, model %d/%d", iter, rep.TotalBytes, rep.FinalBytes, total, final)
		}
		checkInvariants(t, rep)
		d, err := Compare(context.Background(), nil, image(t, layers...), CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range d.Added {
			got = append(got, e.Path)
			if f := m[e.Path]; f.typ != e.Type || f.size != e.Size {
				t.Fatalf("iteration %d: %s is %s of %d, model %s of %d", iter, e.Path, e.Type, e.Size, f.typ, f.size)
			}
		}
		if !reflect.DeepEqual(got, paths) && len(got)+len(paths) > 0 {
			t.Fatalf("iteration %d: final paths %q, model %q", iter, got, paths)
		}
	}
}
