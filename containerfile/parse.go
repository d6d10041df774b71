package containerfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// maxFileSize caps a Containerfile.
const maxFileSize = 4 << 20

// File is a parsed Containerfile: its stages and the ARGs before the first
// FROM.
type File struct {
	// Name is the file's name in messages ("Containerfile").
	Name string
	// Stages in the order of the file.
	Stages []instructions.Stage
	// MetaArgs are the ARG instructions before the first FROM; they may be
	// used in FROM lines.
	MetaArgs []instructions.ArgCommand
	// EscapeToken is the escape character (the escape parser directive;
	// '\' by default).
	EscapeToken rune
	// Warnings are the parser's remarks (empty continuation lines, say),
	// each with its line.
	Warnings []string
}

// Error is a problem with a Containerfile, at a line.
type Error struct {
	// File is the Containerfile's name.
	File string
	// Line is the first line of the instruction (1-based; 0 when unknown).
	Line int
	// Err is what is wrong.
	Err error
}

// Error gives the file, the line and what is wrong.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap gives what is wrong, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Parse reads a Containerfile (Dockerfile syntax: parser directives, line
// continuations, comments, heredocs) with BuildKit's parser and checks that
// every instruction and flag it uses is one Build supports. Any problem is
// an *Error giving the line, matching errdef.ErrInvalid (bad syntax) or
// errdef.ErrUnsupported (an instruction or flag Build does not do).
func Parse(name string, data []byte) (*File, error) {
	if name == "" {
		name = "Containerfile"
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: name, Err: fmt.Errorf("%w: larger than %d bytes", errdef.ErrTooLarge, maxFileSize)}
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locate(name, err, errdef.ErrInvalid)
	}
	f := &File{Name: name, EscapeToken: res.EscapeToken}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		f.Warnings = append(f.Warnings, fmt.Sprintf("%s:%d: %s", name, line, w.Short))
	}
	f.Stages, f.MetaArgs, err = instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locate(name, err, errdef.ErrInvalid)
	}
	if len(f.Stages) == 0 {
		return nil, &Error{File: name, Err: fmt.Errorf("%w: no FROM instruction", errdef.ErrInvalid)}
	}
	for _, s := range f.Stages {
		if s.Platform != "" {
			return nil, &Error{File: name, Line: line(s.Location), Err: fmt.Errorf("%w: FROM --platform", errdef.ErrUnsupported)}
		}
		for _, c := range s.Commands {
			if err := supported(c); err != nil {
				return nil, &Error{File: name, Line: line(c.Location()), Err: err}
			}
		}
	}
	return f, nil
}

// locate turns a parser error into an *Error with its line.
func locate(name string, err error, kind error) error {
	var le *parser.LocationError
	l := 0
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		l = le.Locations[0][0].Start.Line
	}
	msg := err.Error()
	// BuildKit prefixes some messages with the line already.
	if i := strings.Index(msg, "dockerfile parse error on line "); i >= 0 {
		if j := strings.Index(msg[i:], ": "); j >= 0 {
			msg = msg[:i] + msg[i+j+2:]
		}
	}
	return &Error{File: name, Line: l, Err: fmt.Errorf("%w: %s", kind, msg)}
}

func line(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errdef.ErrUnsupported}, a...)...)
}

// supported refuses what Build does not do.
func supported(c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.EnvCommand, *instructions.LabelCommand, *instructions.WorkdirCommand,
		*instructions.UserCommand, *instructions.ExposeCommand, *instructions.VolumeCommand,
		*instructions.StopSignalCommand, *instructions.ArgCommand, *instructions.ShellCommand,
		*instructions.MaintainerCommand:
		return nil
	case *instructions.CmdCommand:
		if len(c.Files) > 0 {
			return unsupported("CMD with a heredoc")
		}
		return nil
	case *instructions.EntrypointCommand:
		if len(c.Files) > 0 {
			return unsupported("ENTRYPOINT with a heredoc")
		}
		return nil
	case *instructions.RunCommand:
		if len(c.Files) > 0 {
			return unsupported("RUN with a heredoc")
		}
		if len(c.FlagsUsed) > 0 {
			return unsupported("RUN --%s", c.FlagsUsed[0])
		}
		if len(c.CmdLine) == 0 || (c.PrependShell && strings.TrimSpace(strings.Join(c.CmdLine, " ")) == "") {
			return fmt.Errorf("%w: RUN needs a command", errdef.ErrInvalid)
		}
		return nil
	case *instructions.CopyCommand:
		switch {
		case len(c.SourceContents) > 0:
			return unsupported("COPY with a heredoc")
		case c.Link:
			return unsupported("COPY --link")
		case c.Parents:
			return unsupported("COPY --parents")
		case len(c.ExcludePatterns) > 0:
			return unsupported("COPY --exclude")
		}
		return nil
	case *instructions.AddCommand:
		switch {
		case len(c.SourceContents) > 0:
			return unsupported("ADD with a heredoc")
		case c.Link:
			return unsupported("ADD --link")
		case len(c.ExcludePatterns) > 0:
			return unsupported("ADD --exclude")
		case c.Checksum != "":
			return unsupported("ADD --checksum")
		case c.KeepGitDir != nil:
			return unsupported("ADD --keep-git-dir")
		}
		for _, s := range c.SourcePaths {
			if isRemote(s) {
				return unsupported("ADD of %q: remote sources (URLs, git) are not fetched; download the file into the build context", s)
			}
		}
		return nil
	case *instructions.HealthCheckCommand:
		return unsupported("HEALTHCHECK: OCI image configurations have no health check")
	case *instructions.OnbuildCommand:
		return unsupported("ONBUILD: OCI image configurations have no build triggers")
	}
	return unsupported("instruction %s", strings.ToUpper(c.Name()))
}

func isRemote(s string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://", "ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
