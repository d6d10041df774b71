package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer/analyze"
)

// formatFlag is the --format flag of a command that prints a result: text
// (the default), json, or, where the command allows, a Go template.
type formatFlag struct {
	value     string
	templates bool
	// long leaves -f free (build's -f names a Containerfile, as in docker).
	long bool
}

func (f *formatFlag) register(cmd *cobra.Command, templates bool) {
	f.templates = templates
	usage := `output format: "json"`
	if templates {
		usage = `output format: "json" or a Go template ('{{.Digest}}', '{{json .Config}}')`
	}
	short := "f"
	if f.long {
		short = ""
	}
	cmd.Flags().StringVarP(&f.value, "format", short, "", usage)
}

// check refuses a format the command does not take, before any work.
func (f *formatFlag) check() error {
	switch {
	case f.value == "" || f.value == "json":
		return nil
	case f.templates && strings.Contains(f.value, "{{"):
		_, err := parseTemplate(f.value)
		return err
	case f.templates:
		return usageError{fmt.Errorf("--format %q: %w: want json or a Go template such as '{{.Digest}}'", f.value, errdef.ErrInvalid)}
	}
	return usageError{fmt.Errorf("--format %q: %w: want json", f.value, errdef.ErrInvalid)}
}

// write writes v as the format says: text with the text function, indented
// JSON, or through the template.
func (f *formatFlag) write(cmd *cobra.Command, v any, text func(io.Writer) error) error {
	w := cmd.OutOrStdout()
	switch {
	case f.value == "":
		return text(w)
	case f.value == "json":
		return writeJSON(w, v)
	}
	if err := f.check(); err != nil {
		return err
	}
	tmpl, _ := parseTemplate(f.value)
	if err := tmpl.Execute(w, v); err != nil {
		return templateError(err, v)
	}
	_, err := fmt.Fprintln(w)
	return err
}

func parseTemplate(s string) (*template.Template, error) {
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"size":  analyze.HumanSize,
	}).Parse(s)
	if err != nil {
		return nil, usageError{fmt.Errorf("--format: %w: %v", errdef.ErrInvalid, err)}
	}
	return tmpl, nil
}

var missingField = regexp.MustCompile(`can't evaluate field (\w+) in type`)

// templateError explains a template that names a field v does not have,
// listing the fields there are.
func templateError(err error, v any) error {
	if m := missingField.FindStringSubmatch(err.Error()); m != nil {
		return usageError{fmt.Errorf("--format: %w: no field %q; the fields are %s", errdef.ErrInvalid, m[1], strings.Join(fieldNames(v), ", "))}
	}
	return usageError{fmt.Errorf("--format: %w: %v", errdef.ErrInvalid, err)}
}

// fieldNames lists the exported fields of v's struct type (or of its
// elements, for a slice).
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			out = append(out, f.Name)
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// humanSize renders a byte count for people ("172.4 MB"); -1 is unknown.
func humanSize(n int64) string {
	if n < 0 {
		return "?"
	}
	return analyze.HumanSize(n)
}

// sizeFlag is a byte count flag that takes units: 1G, 512MiB, 10GB, 4096.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Type() string   { return "size" }
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize reads a size with an optional unit: K, M, G, T and KiB, MiB,
// GiB, TiB are powers of 1024; KB, MB, GB, TB powers of 1000; B or no unit
// bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (1G, 512MiB, 10GB)", s)
	}
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TIB": 1 << 40,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (K, M, G, T, KiB, MiB, GiB, KB, MB, GB)", s, unit)
	}
	return int64(f * mult), nil
}
