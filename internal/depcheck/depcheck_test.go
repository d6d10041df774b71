// Package depcheck guards the direction of imports between lading's packages.
package depcheck

import (
	"encoding/json"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lading-oci/lading"

// layers maps each package (relative to the module) to its level. A package
// may import lading packages of lower levels only, plus the same-level
// exceptions in allowed.
var layers = map[string]int{
	"errdef":                0,
	"progress":              0,
	"internal/atomicfile":   0,
	"image":                 1,
	"ref":                   1,
	"internal/inroot":       1,
	"content":               2,
	"layer":                 2,
	"registry/errcode":      2,
	"registry/credentials":  2,
	"bundle":                2,
	"internal/archive":      2,
	"layer/unpack":          3,
	"layer/analyze":         3,
	"content/memory":        3,
	"content/ocilayout":     3,
	"content/contenttest":   3,
	"content/ociarchive":    3,
	"content/dockerarchive": 3,
	"registry/client":       3,
	"registry/storage":      3,
	"mutate":                4,
	"registry/server":       4,
	"transfer":              5,
	"container":             6,
	"containerfile":         7,
	"cmd/lading":            8,
	"internal/testutil":     8,
	"internal/registrytest": 8,
	"bench/pushload":        8,
	"internal/depcheck":     9,
}

// forbidden lists edges that must never exist, whatever the levels say.
var forbidden = map[string][]string{
	"layer":            {"content", "registry"},
	"layer/unpack":     {"content", "registry"},
	"layer/analyze":    {"content", "registry"},
	"mutate":           {"registry"},
	"registry/server":  {"registry/client", "github.com/spf13/cobra"},
	"registry/storage": {"registry/client"},
	"bundle":           {"content", "registry"},
	"registry/client":  {"registry/server"},
	"image":            {"content", "layer", "registry"},
}

type pkg struct {
	ImportPath  string
	Imports     []string
	TestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	if strings.HasPrefix(path, module+"/") {
		return strings.TrimPrefix(path, module+"/"), true
	}
	return "", false
}

func TestImportDirection(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	var problems []string
	for _, p := range pkgs {
		name, _ := rel(p.ImportPath)
		level, known := layers[name]
		if !known {
			problems = append(problems, name+": package has no level in depcheck; add it to layers")
			continue
		}
		for _, imp := range p.Imports {
			for _, bad := range forbidden[name] {
				full := bad
				if !strings.Contains(bad, ".") {
					full = module + "/" + bad
				}
				if imp == full || strings.HasPrefix(imp, full+"/") {
					problems = append(problems, name+" imports "+imp+": forbidden edge")
				}
			}
			dep, ok := rel(imp)
			if !ok {
				continue
			}
			if name == "cmd/lading" && dep == "cmd/lading" {
				continue
			}
			dl, known := layers[dep]
			if !known {
				continue // reported on its own
			}
			if dl >= level {
				problems = append(problems, name+" (level "+itoa(level)+") imports "+dep+" (level "+itoa(dl)+"): imports must point down")
			}
		}
		if name != "cmd/lading" && name != "internal/depcheck" {
			for _, imp := range p.Imports {
				if imp == "github.com/spf13/cobra" || strings.HasPrefix(imp, "github.com/vbauerster/mpb") {
					problems = append(problems, name+" imports "+imp+": CLI libraries belong to cmd/lading only")
				}
			}
		}
		// contenttest is for tests, and for the test helpers built on it.
		for _, imp := range p.Imports {
			if imp == module+"/content/contenttest" && name != "internal/testutil" {
				problems = append(problems, name+" imports contenttest outside tests")
			}
		}
	}
	sort.Strings(problems)
	for _, pr := range problems {
		t.Error(pr)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
