package image

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// toPlain converts a parsed tree into the values encoding/json produces with
// UseNumber, for comparison.
func toPlain(v any) any {
	switch x := v.(type) {
	case *object:
		m := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			m[k] = toPlain(x.fields[k])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toPlain(e)
		}
		return out
	}
	return v
}

func stdlibParse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkParserAgrees compares parseDocument with encoding/json on data.
func checkParserAgrees(t *testing.T, data []byte) {
	o, perr := parseDocument(data)
	valid := json.Valid(data) && utf8.Valid(data)
	if perr == nil {
		if !valid {
			t.Fatalf("parser accepted invalid JSON %q", data)
		}
		want, err := stdlibParse(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := toPlain(o); !reflect.DeepEqual(got, want) {
			t.Fatalf("parser disagrees with encoding/json on %q:\n got %#v\nwant %#v", data, got, want)
		}
		return
	}
	if valid && perr.msg != "duplicate key" && !strings.HasPrefix(perr.msg, "nested more than") &&
		!strings.HasPrefix(perr.msg, "document must be a JSON object") {
		t.Fatalf("parser refused valid JSON %q: %s", data, perr.msg)
	}
}

func TestParser(t *testing.T) {
	for _, s := range []string{
		`{}`, ` {"a" : [ 1 , -0.5e+3, 1E2, true, false, null, "x"] } `,
		`{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`,
		`{"lone":"\ud800", "low":"\udc00x", "pair-broken":"\ud800\u0041", "two-high":"\ud800\ud800\udc00"}`,
		`{"u":"é😀"}`,
		`{"a":{"b":{"c":[[[]]]}}}`,
		// invalid
		`{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":"unterminated`,
		`{a:1}`, `{"a":1}}`, `{"a":1} x`, `{"a":'x'}`, `{"a":+1}`, `{"a":NaN}`,
		`{"a":1,"a":2}`, `[]`, `"x"`, `1`, ``, ` `,
	} {
		checkParserAgrees(t, []byte(s))
	}
}

func FuzzParser(f *testing.F) {
	for _, s := range []string{`{"a":[1,"\u00e9",{"b":null}]}`, `{"s":"\ud800\udc00"}`, baseConfig, baseOCIIndex} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParserAgrees(t, data)
	})
}
