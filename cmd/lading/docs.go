package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cliDocs renders the reference of every command as markdown files, by
// name: one per command and a README.md index.
func cliDocs(root *cobra.Command) map[string][]byte {
	out := map[string][]byte{}
	var index bytes.Buffer
	fmt.Fprintf(&index, "# lading command reference\n\n<!-- Generated from the commands' help by `go test ./cmd/lading -run TestCLIReference -update-docs`; do not edit. -->\n\n")
	fmt.Fprintf(&index, "%s\n\n", root.Short)
	fmt.Fprintf(&index, "```\n%s\n```\n\n", strings.TrimSpace(root.Long))
	fmt.Fprintf(&index, "## Global flags\n\n```\n%s```\n\n## Commands\n\n", flagUsages(root.PersistentFlags()))
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || !sub.IsAvailableCommand() || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			cmds = append(cmds, sub)
			walk(sub)
		}
	}
	walk(root)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].CommandPath() < cmds[j].CommandPath() })
	for _, c := range cmds {
		path := strings.TrimPrefix(c.CommandPath(), "lading ")
		file := "lading_" + strings.ReplaceAll(path, " ", "_") + ".md"
		fmt.Fprintf(&index, "- [`lading %s`](%s): %s\n", path, file, c.Short)
		var b bytes.Buffer
		fmt.Fprintf(&b, "# lading %s\n\n<!-- Generated; do not edit. -->\n\n%s\n\n", path, c.Short)
		fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
		if c.Long != "" {
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(c.Long))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "## Examples\n\n```\n%s\n```\n\n", strings.TrimRight(c.Example, "\n"))
		}
		if fl := flagUsages(c.NonInheritedFlags()); fl != "" {
			fmt.Fprintf(&b, "## Flags\n\n```\n%s```\n\n", fl)
		}
		fmt.Fprintf(&b, "Global flags: see [the index](README.md).\n")
		out[file] = b.Bytes()
	}
	out["README.md"] = index.Bytes()
	return out
}

func flagUsages(fs *pflag.FlagSet) string {
	var visible pflag.FlagSet
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			visible.AddFlag(f)
		}
	})
	return visible.FlagUsagesWrapped(100)
}

// writeCLIDocs writes the reference into dir, removing pages of commands
// that are gone.
func writeCLIDocs(root *cobra.Command, dir string) error {
	docs := cliDocs(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	for _, f := range old {
		if _, ok := docs[filepath.Base(f)]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, data := range docs {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
