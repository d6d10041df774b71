package image

import (
	"fmt"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// MaxDocumentBytes caps the size of a manifest, index, configuration or
// oci-layout document. Larger input is refused with errdef.ErrTooLarge before
// it is parsed.
const MaxDocumentBytes = 4 << 20

// maxProblems caps how many problems one document reports; a final entry says
// how many more were found.
const maxProblems = 100

// ValidationError is one broken rule in one document.
type ValidationError struct {
	// Document names the document: "manifest", "index", "config",
	// "oci-layout", "descriptor", or a caller-supplied prefix such as
	// "index.manifests[0]".
	Document string
	// Path is the JSON path of the offending field within the document, such
	// as `layers[2].digest` or `annotations["com.example.key"]`. It is empty
	// when the problem concerns the whole document.
	Path string
	// Rule says what is wrong.
	Rule string
	// Err is the category: errdef.ErrInvalid for a broken rule,
	// errdef.ErrUnsupported for well-formed input lading does not handle
	// (an unknown digest algorithm, a schema 1 manifest).
	Err error
}

// Error renders "document.path: rule".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Document)
	if e.Path != "" {
		if b.Len() > 0 && e.Path[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(e.Path)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Rule)
	return b.String()
}

// Unwrap returns the category, so errors.Is(err, errdef.ErrInvalid) works.
func (e *ValidationError) Unwrap() error { return e.Err }

// ValidationErrors lists every problem found in one document, in the order
// the fields were checked.
type ValidationErrors []*ValidationError

// Error joins the problems, one per line.
func (es ValidationErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so errors.Is matches the category
// of any of them and errors.As finds a *ValidationError.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// checker collects the problems of one document.
type checker struct {
	doc string
	// nullIsAbsent treats a JSON null as an absent field, as the image
	// configuration allows for every OPTIONAL field.
	nullIsAbsent bool
	// strict makes warnings errors: validation gives the specification's
	// verdict, while reading tolerates what does not break integrity or
	// safety.
	strict   bool
	errs     ValidationErrors
	warnings ValidationErrors
	warnOut  *ValidationErrors
	dropped  int
}

func (c *checker) add(sentinel error, path, format string, args ...any) {
	if len(c.errs) >= maxProblems {
		c.dropped++
		return
	}
	c.errs = append(c.errs, &ValidationError{Document: c.doc, Path: path, Rule: fmt.Sprintf(format, args...), Err: sentinel})
}

func (c *checker) invalid(path, format string, args ...any) {
	c.add(errdef.ErrInvalid, path, format, args...)
}

// warn records a problem that breaks a rule the specification states as
// SHOULD, or concerns a value lading does not act on (an annotation, a
// creation time, an Env entry): an error when validating strictly, a
// warning when reading.
func (c *checker) warn(path, format string, args ...any) {
	if c.strict {
		c.invalid(path, format, args...)
		return
	}
	if len(c.warnings) < maxProblems {
		c.warnings = append(c.warnings, &ValidationError{Document: c.doc, Path: path, Rule: fmt.Sprintf(format, args...), Err: errdef.ErrInvalid})
	}
}

func (c *checker) unsupported(path, format string, args ...any) {
	c.add(errdef.ErrUnsupported, path, format, args...)
}

// err returns the collected problems, or nil, and hands the warnings to the
// caller that asked for them.
func (c *checker) err() error {
	if c.warnOut != nil && len(c.warnings) > 0 {
		*c.warnOut = append(*c.warnOut, c.warnings...)
		c.warnings = nil
	}
	if len(c.errs) == 0 {
		return nil
	}
	if c.dropped > 0 {
		es := append(ValidationErrors(nil), c.errs...)
		es = append(es, &ValidationError{Document: c.doc, Rule: fmt.Sprintf("%d more problems not shown", c.dropped), Err: errdef.ErrInvalid})
		return es
	}
	return c.errs
}
