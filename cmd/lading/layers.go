package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/layer/analyze"
	"github.com/lading-oci/lading/transfer"
)

func newLayersCmd(o *rootOptions) *cobra.Command {
	var (
		platform string
		files    bool
		top      int
		format   formatFlag
	)
	cmd := &cobra.Command{
		Use:   "layers REF",
		Short: "Per layer: files added, changed and removed, and wasted bytes; the image's efficiency",
		Long: `Account for every byte an image ships, from the layers' tar headers: per layer the files it adds, changes
and removes, and its wasted bytes — files that a later layer overwrites or deletes (including everything under a
deleted directory and everything an opaque whiteout hides), which are shipped but never seen. Efficiency is the
share of shipped file bytes that reach the final filesystem.`,
		Example: `  lading layers oci:./images:app
  lading layers oci:./images:app --format json | jq .wastedBytes
  lading layers oci:./images:app --format '{{.Efficiency}}'
  lading layers oci:./images:app --files --top 50`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			t, img, err := o.loadImage(cmd, args[0], platform)
			if err != nil {
				return err
			}
			rep, err := transfer.Analyze(cmd.Context(), t.Store, img, analyze.Options{Files: files})
			if err != nil {
				return err
			}
			return format.write(cmd, rep, func(w io.Writer) error {
				return rep.WriteText(w, analyze.TextOptions{Top: top, Changes: files})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&platform, "platform", "", "from an index, this platform's image")
	fs.BoolVar(&files, "files", false, "list every change of every layer")
	fs.IntVar(&top, "top", 20, "how many wasted files to list")
	format.register(cmd, true)
	return cmd
}

func newDiffCmd(o *rootOptions) *cobra.Command {
	var (
		platform string
		exitCode bool
		format   formatFlag
	)
	cmd := &cobra.Command{
		Use:   "diff REF1 REF2",
		Short: "Files added, removed and changed between two images' filesystems",
		Long: `Compare the final filesystems of two images path by path: "+ path" added, "- path" removed,
"M path (what)" changed in content, size, mode, owner, link target or device numbers. With --format json, each
changed path has its new state and, under "old", its state in REF1; modes are permission strings.
--exit-code exits 1 when the images differ, as diff does.`,
		Example: `  lading diff oci:./images:v1 oci:./images:v2
  lading diff oci:./images:v1 oci:./images:v2 --format json
  lading diff oci:./images:v1 oci:./images:v2 --exit-code > /dev/null || echo differ`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			ta, a, err := o.loadImage(cmd, args[0], platform)
			if err != nil {
				return err
			}
			tb, b, err := o.loadImage(cmd, args[1], platform)
			if err != nil {
				return err
			}
			rep, err := transfer.Compare(cmd.Context(), ta.Store, a, tb.Store, b, analyze.CompareOptions{})
			if err != nil {
				return err
			}
			if err := format.write(cmd, rep, rep.WriteText); err != nil {
				return err
			}
			if exitCode && len(rep.Added)+len(rep.Removed)+len(rep.Changed) > 0 {
				return exitError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from indexes, this platform's images")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when the images differ")
	format.register(cmd, false)
	return cmd
}
