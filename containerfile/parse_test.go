package containerfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestParse(t *testing.T) {
	src := `# escape=` + "`" + `
# a comment
ARG BASE=scratch
FROM $BASE AS first
# a comment between instructions
ENV A=1 ` + "`" + `
    B=2
RUN echo one ` + "`" + `
  two
COPY --chown=1:2 --chmod=0644 a b /dst/
CMD ["x"]
FROM first
ENTRYPOINT echo hi
`
	f, err := Parse("Containerfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.EscapeToken != '`' || len(f.Stages) != 2 || len(f.MetaArgs) != 1 {
		t.Fatalf("escape %q, %d stages, %d meta args", f.EscapeToken, len(f.Stages), len(f.MetaArgs))
	}
	if f.Stages[0].Name != "first" || len(f.Stages[0].Commands) != 4 {
		t.Errorf("stage 0: %q with %d commands", f.Stages[0].Name, len(f.Stages[0].Commands))
	}
	env := f.Stages[0].Commands[0].(*instructions.EnvCommand)
	if len(env.Env) != 2 || env.Env[1].Key != "B" {
		t.Errorf("continued ENV: %+v", env.Env)
	}
	run := f.Stages[0].Commands[1].(*instructions.RunCommand)
	if line(run.Location()) != 8 || !run.PrependShell {
		t.Errorf("RUN at line %d, shell form %v", line(run.Location()), run.PrependShell)
	}
}

// Every problem names the line it is on.
func TestParseErrorsHaveLines(t *testing.T) {
	cases := []struct {
		src  string
		line int
		kind error
		msg  string
	}{
		{"FROM scratch\nBOGUS x\n", 2, errdef.ErrInvalid, "unknown instruction"},
		{"FROM scratch\n\nRUN\n", 3, errdef.ErrInvalid, "RUN"},
		{"FROM scratch\nHEALTHCHECK CMD true\n", 2, errdef.ErrUnsupported, "HEALTHCHECK"},
		{"FROM scratch\nONBUILD RUN true\n", 2, errdef.ErrUnsupported, "ONBUILD"},
		{"FROM scratch\nCOPY --link a b\n", 2, errdef.ErrUnsupported, "--link"},
		{"FROM scratch\nADD https://example.com/x /x\n", 2, errdef.ErrUnsupported, "remote"},
		{"FROM scratch\nRUN --mount=type=cache,target=/x true\n", 2, errdef.ErrUnsupported, "--mount"},
		{"FROM scratch\nRUN <<EOF\necho\nEOF\n", 2, errdef.ErrUnsupported, "heredoc"},
		{"FROM --platform=linux/arm64 scratch\n", 1, errdef.ErrUnsupported, "--platform"},
		{"FROM scratch\nCOPY --bogus=1 a b\n", 2, errdef.ErrInvalid, "bogus"},
		{"FROM scratch\nENV\n", 2, errdef.ErrInvalid, "ENV"},
		{"FROM scratch\nCMD [\"unterminated\n", 0, nil, ""}, // JSON that is not: a shell form
	}
	for _, c := range cases {
		_, err := Parse("Containerfile", []byte(c.src))
		if c.kind == nil {
			if err != nil {
				t.Errorf("%q: %v", c.src, err)
			}
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("%q: got %v, want an *Error", c.src, err)
			continue
		}
		if fe.Line != c.line || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: got %q (line %d), want line %d, %v, %q", c.src, err, fe.Line, c.line, c.kind, c.msg)
		}
		if c.line > 0 && !strings.HasPrefix(err.Error(), "Containerfile:"+itoa(c.line)+": ") {
			t.Errorf("%q: message %q does not start with the line", c.src, err)
		}
	}
	if _, err := Parse("Containerfile", []byte("# nothing\n")); err == nil {
		t.Error("a file without FROM parsed")
	}
	if _, err := Parse("Containerfile", []byte("RUN true\n")); err == nil {
		t.Error("an instruction before FROM parsed")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// Whatever the input, Parse returns a file or an *Error, and never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM scratch\nCOPY a /b\n",
		"# escape=`\nFROM x AS y\nRUN a `\n b\n",
		"ARG X=1\nFROM ${X}\nENV A=$X B=\"q\"\nCMD [\"a\"]\n",
		"FROM scratch\nRUN <<EOF\nx\nEOF\n",
		"FROM a\nHEALTHCHECK NONE\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("Containerfile", data)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(file.Stages) == 0 {
			t.Fatal("a file without stages parsed")
		}
		for _, s := range file.Stages {
			for _, c := range s.Commands {
				if supported(c) != nil {
					t.Fatalf("unsupported %s passed", c.Name())
				}
			}
		}
	})
}
