package image

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Documents are parsed into a small tree before any Go struct is filled in,
// so that field types, required fields and JSON paths can be checked exactly,
// and so that the struct is built only from keys that match a field name
// exactly (encoding/json matches keys case-insensitively, which would let
// "MediaType" shadow "mediaType").
//
// Values in the tree are nil, bool, json.Number, string, []any or *object.

// maxDepth bounds nesting. OCI documents are a few levels deep; unknown
// fields may nest further, but not without limit.
const maxDepth = 256

// object is a JSON object with its keys in document order.
type object struct {
	keys   []string
	fields map[string]any
}

func (o *object) has(key string) bool {
	_, ok := o.fields[key]
	return ok
}

// parseError is a syntax problem found while building the tree.
type parseError struct {
	path string
	msg  string
}

func (e *parseError) Error() string { return e.msg }

// parseDocument parses data, which must hold exactly one JSON object (RFC
// 8259, UTF-8), into a tree. Duplicate keys are refused: parsers disagree on
// which value wins, so a document with duplicates can mean different things
// to different readers.
func parseDocument(data []byte) (*object, *parseError) {
	if !utf8.Valid(data) {
		return nil, &parseError{msg: "malformed JSON: not valid UTF-8"}
	}
	p := &parser{data: data}
	p.skipSpace()
	v, perr := p.value()
	if perr != nil {
		return nil, perr
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("data after the top-level value")
	}
	o, ok := v.(*object)
	if !ok {
		return nil, &parseError{msg: "document must be a JSON object, got " + typeName(v)}
	}
	return o, nil
}

// parser is a strict recursive-descent JSON parser. It is several times
// faster than encoding/json's token API and keeps key order and duplicates
// visible.
type parser struct {
	data []byte
	pos  int
	// stack holds the keys (string) and indexes (int) leading to the value
	// being parsed; the JSON path of a problem is built from it only when one
	// is found.
	stack []any
}

// path renders the current position as a JSON path.
func (p *parser) path() string {
	var s string
	for _, seg := range p.stack {
		switch seg := seg.(type) {
		case string:
			s = joinKey(s, seg)
		case int:
			s = joinIndex(s, seg)
		}
	}
	return s
}

func (p *parser) errorf(format string, args ...any) *parseError {
	if p.pos >= len(p.data) {
		return &parseError{msg: "malformed JSON: unexpected end of input"}
	}
	return &parseError{msg: fmt.Sprintf("malformed JSON at offset %d: ", p.pos) + fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses one value; p.pos is at its first byte.
func (p *parser) value() (any, *parseError) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("")
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		if len(p.stack) >= maxDepth {
			return nil, &parseError{path: p.path(), msg: fmt.Sprintf("nested more than %d levels deep", maxDepth)}
		}
		if c == '{' {
			return p.object()
		}
		return p.array()
	case c == '"':
		return p.string()
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *parser) literal(word string) *parseError {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal, want %s", word)
	}
	p.pos += len(word)
	return nil
}

func (p *parser) object() (any, *parseError) {
	p.pos++ // '{'
	o := &object{fields: map[string]any{}}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return o, nil
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want an object key")
		}
		key, perr := p.string()
		if perr != nil {
			return nil, perr
		}
		p.stack = append(p.stack, key)
		if _, dup := o.fields[key]; dup {
			return nil, &parseError{path: p.path(), msg: "duplicate key"}
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("want ':' after an object key")
		}
		p.pos++
		p.skipSpace()
		v, perr := p.value()
		if perr != nil {
			return nil, perr
		}
		p.stack = p.stack[:len(p.stack)-1]
		o.keys = append(o.keys, key)
		o.fields[key] = v
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			p.skipSpace()
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return o, nil
		}
		return nil, p.errorf("want ',' or '}' in an object")
	}
}

func (p *parser) array() (any, *parseError) {
	p.pos++ // '['
	arr := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return arr, nil
	}
	for {
		p.stack = append(p.stack, len(arr))
		v, perr := p.value()
		if perr != nil {
			return nil, perr
		}
		p.stack = p.stack[:len(p.stack)-1]
		arr = append(arr, v)
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			p.skipSpace()
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return arr, nil
		}
		return nil, p.errorf("want ',' or ']' in an array")
	}
}

// number checks the JSON number grammar and returns the literal.
func (p *parser) number() (any, *parseError) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && '1' <= d[p.pos] && d[p.pos] <= '9':
		p.skipDigits()
	default:
		return nil, p.errorf("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.skipDigits() == 0 {
			return nil, p.errorf("invalid number: no digits after '.'")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.skipDigits() == 0 {
			return nil, p.errorf("invalid number: no digits in the exponent")
		}
	}
	return json.Number(d[start:p.pos]), nil
}

func (p *parser) skipDigits() int {
	n := 0
	for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// string parses a string literal. Lone UTF-16 surrogates in \u escapes become
// U+FFFD, as encoding/json does.
func (p *parser) string() (string, *parseError) {
	p.pos++ // '"'
	start := p.pos
	d := p.data
	// Fast path: no escapes.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := string(d[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in a string")
		}
		p.pos++
	}
	buf := append([]byte(nil), d[start:p.pos]...)
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(d) {
			break
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					if r2, ok = p.hex4(); !ok {
						return "", p.errorf("invalid \\u escape")
					}
					if utf16.DecodeRune(r, r2) == utf8.RuneError {
						p.pos = save // not a pair: the second escape stands alone
						r2 = -1
					}
				}
				if r2 < 0 {
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.pos--
			return "", p.errorf("invalid escape '\\%c'", e)
		}
	}
	return "", p.errorf("")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	p.pos += 4
	return r, true
}

// typeName names the JSON type of a tree value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *object:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// joinKey appends an object key to a JSON path: `a.b` for identifier-like
// keys, `a["b.c"]` for the rest.
func joinKey(path, key string) string {
	if isIdent(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// joinIndex appends an array index to a JSON path.
func joinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Typed field access. Each getter reports a type problem at the field's path
// and returns ok=false when the field is absent or has the wrong type.

// field returns the raw value of key, treating null as absent when the
// document allows it.
//
// A key that differs from key only in case is a problem: encoding/json,
// which most readers of these documents use, matches keys without regard to
// case, so such a document means different things to different readers
// ("layers" to one, "Layers" to another).
func (c *checker) field(o *object, path, key string) (any, string, bool) {
	for _, k := range o.keys {
		if k != key && strings.EqualFold(k, key) {
			c.invalid(joinKey(path, k), "key differs only in case from %q: readers that match keys without regard to case would take one for the other", key)
		}
	}
	v, ok := o.fields[key]
	if !ok || (v == nil && c.nullIsAbsent) {
		return nil, joinKey(path, key), false
	}
	return v, joinKey(path, key), true
}

func (c *checker) missing(p string, required bool) {
	if required {
		c.invalid(p, "required field is missing")
	}
}

func (c *checker) wrongType(p, want string, v any) {
	c.invalid(p, "must be %s, got %s", want, typeName(v))
}

func (c *checker) getString(o *object, path, key string, required bool) (string, string, bool) {
	v, p, ok := c.field(o, path, key)
	if !ok {
		c.missing(p, required)
		return "", p, false
	}
	s, ok := v.(string)
	if !ok {
		c.wrongType(p, "a string", v)
		return "", p, false
	}
	return s, p, true
}

func (c *checker) getBool(o *object, path, key string) (bool, bool) {
	v, p, ok := c.field(o, path, key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		c.wrongType(p, "a boolean", v)
		return false, false
	}
	return b, true
}

// asInt64 checks that v is a JSON integer (no fraction, no exponent) that
// fits in an int64.
func (c *checker) asInt64(p string, v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		c.wrongType(p, "an integer", v)
		return 0, false
	}
	s := string(n)
	if strings.ContainsAny(s, ".eE") {
		c.invalid(p, "must be an integer, got %s", s)
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		c.invalid(p, "integer %s is out of range", s)
		return 0, false
	}
	return i, true
}

func (c *checker) getInt(o *object, path, key string, required bool) (int64, string, bool) {
	v, p, ok := c.field(o, path, key)
	if !ok {
		c.missing(p, required)
		return 0, p, false
	}
	i, ok := c.asInt64(p, v)
	return i, p, ok
}

func (c *checker) getObject(o *object, path, key string, required bool) (*object, string, bool) {
	v, p, ok := c.field(o, path, key)
	if !ok {
		c.missing(p, required)
		return nil, p, false
	}
	obj, ok := v.(*object)
	if !ok {
		c.wrongType(p, "an object", v)
		return nil, p, false
	}
	return obj, p, true
}

func (c *checker) getArray(o *object, path, key string, required bool) ([]any, string, bool) {
	v, p, ok := c.field(o, path, key)
	if !ok {
		c.missing(p, required)
		return nil, p, false
	}
	arr, ok := v.([]any)
	if !ok {
		c.wrongType(p, "an array", v)
		return nil, p, false
	}
	return arr, p, true
}

// getStrings reads an array of strings. Entries of the wrong type are
// reported and left out.
func (c *checker) getStrings(o *object, path, key string, required bool) ([]string, string, bool) {
	arr, p, ok := c.getArray(o, path, key, required)
	if !ok {
		return nil, p, false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, v := range arr {
		s, ok := v.(string)
		if !ok {
			c.wrongType(joinIndex(p, i), "a string", v)
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, p, good
}

// getStringMap reads an object whose values are all strings (annotations,
// labels).
func (c *checker) getStringMap(o *object, path, key string) (map[string]string, string, bool) {
	obj, p, ok := c.getObject(o, path, key, false)
	if !ok {
		return nil, p, false
	}
	out := make(map[string]string, len(obj.keys))
	good := true
	for _, k := range obj.keys {
		s, ok := obj.fields[k].(string)
		if !ok {
			c.wrongType(joinKey(p, k), "a string", obj.fields[k])
			good = false
			continue
		}
		out[k] = s
	}
	return out, p, good
}

// getSet reads an object whose values are all objects, the JSON form of a Go
// map[string]struct{} (ExposedPorts, Volumes). check validates each key.
func (c *checker) getSet(o *object, path, key string, check func(p, k string)) (map[string]struct{}, bool) {
	obj, p, ok := c.getObject(o, path, key, false)
	if !ok {
		return nil, false
	}
	out := make(map[string]struct{}, len(obj.keys))
	for _, k := range obj.keys {
		kp := joinKey(p, k)
		if _, ok := obj.fields[k].(*object); !ok {
			c.wrongType(kp, "an object", obj.fields[k])
		}
		check(kp, k)
		out[k] = struct{}{}
	}
	return out, true
}
