package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
)

// TextOptions configure Report.WriteText.
type TextOptions struct {
	// Top is how many wasted files to list: 0 means 20, negative none.
	Top int
	// Changes lists each layer's changes when the report has them.
	Changes bool
}

// WriteText writes the report for people: a table of the layers, the files
// that waste the most bytes, then the totals and the efficiency.
func (r *Report) WriteText(w io.Writer, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tDIGEST\tSIZE\tADDED\tCHANGED\tREMOVED\tWASTED")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\n", l.Index, shortDigest(l.Digest), HumanSize(l.Size),
			l.Added, l.Changed, l.Removed, HumanSize(l.WastedBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if opts.Changes {
		for _, l := range r.Layers {
			if len(l.Changes) == 0 {
				continue
			}
			fmt.Fprintf(bw, "\nLayer %d changes:\n", l.Index)
			tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
			for _, c := range l.Changes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", changeMark(c.Kind), c.Type, HumanSize(c.Size), c.Path)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	top := opts.Top
	if top == 0 {
		top = 20
	}
	if top > 0 && len(r.Causes) > 0 {
		fmt.Fprintf(bw, "\nWhat wasted the bytes (a later layer's action and the path it named):\n")
		tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WASTED\tFILES\tLAYER\tACTION\tPATH")
		for _, c := range r.Causes[:min(top, len(r.Causes))] {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", HumanSize(c.Bytes), c.Files, c.Layer, c.Action, c.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if top > 0 && len(r.Wasted) > 0 {
		fmt.Fprintf(bw, "\nTop wasted files:\n")
		tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WASTED\tCOPIES\tLAYERS\tPATH")
		for _, f := range r.Wasted[:min(top, len(r.Wasted))] {
			layers := make([]string, len(f.Layers))
			for i, l := range f.Layers {
				layers[i] = strconv.Itoa(l)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", HumanSize(f.Bytes), f.Count, strings.Join(layers, ","), f.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(bw)
	tw = tabwriter.NewWriter(bw, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Total:\t%s\n", HumanSize(r.TotalBytes))
	fmt.Fprintf(tw, "Final:\t%s\n", HumanSize(r.FinalBytes))
	fmt.Fprintf(tw, "Wasted:\t%s\n", HumanSize(r.WastedBytes))
	fmt.Fprintf(tw, "Efficiency:\t%.1f%%\n", r.Efficiency*100)
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

func changeMark(k ChangeKind) string {
	switch k {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "M"
}

// WriteText writes one line per path, in path order: "+ path" for added,
// "- path" for removed and "M path (content, mode)" for changed paths.
func (d *Comparison) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	a, r, c := d.Added, d.Removed, d.Changed
	for len(a)+len(r)+len(c) > 0 {
		// Merge the three sorted lists.
		pick, mark := &a, "+"
		if len(a) == 0 || (len(r) > 0 && r[0].Path < (*pick)[0].Path) {
			pick, mark = &r, "-"
		}
		if len(*pick) == 0 || (len(c) > 0 && c[0].Path < (*pick)[0].Path) {
			pick, mark = &c, "M"
		}
		e := (*pick)[0]
		*pick = (*pick)[1:]
		if mark == "M" {
			fmt.Fprintf(bw, "M %s (%s)\n", e.Path, strings.Join(e.Changes, ", "))
		} else {
			fmt.Fprintf(bw, "%s %s\n", mark, e.Path)
		}
	}
	return bw.Flush()
}

func shortDigest(d digest.Digest) string {
	if d.Validate() != nil {
		if d == "" {
			return "-"
		}
		return string(d)
	}
	enc := d.Encoded()
	return d.Algorithm().String() + ":" + enc[:min(12, len(enc))]
}

// HumanSize formats a byte count with decimal units, as "43 B", "8.1 MB".
func HumanSize(n int64) string {
	if n < 1000 && n > -1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= 1000
		if f < 999.95 && f > -999.95 {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + unit
		}
	}
	return strconv.FormatFloat(f/1000, 'f', 1, 64) + " EB"
}
