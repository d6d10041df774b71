package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/mutate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configFlags are the image configuration flags shared by build, mutate,
// append, commit and flatten.
type configFlags struct {
	entrypoint, cmd             []string
	env, expose, volume         []string
	labels, annotations         []string
	workdir, user, author, stop string
	platform                    string

	unsetEnv, unsetLabel, unsetAnnotation, unsetExpose, unsetVolume []string
}

func (f *configFlags) register(fs *pflag.FlagSet, withPlatform bool) {
	fs.StringArrayVar(&f.entrypoint, "entrypoint", nil, "entrypoint: repeat for each argument, or one JSON array (\"[]\" clears it)")
	fs.StringArrayVar(&f.cmd, "cmd", nil, "default arguments: repeat for each argument, or one JSON array (\"[]\" clears them)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory")
	fs.StringVarP(&f.user, "user", "u", "", "user (name, uid, uid:gid)")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port, PORT[/tcp|udp|sctp] (repeatable)")
	fs.StringArrayVar(&f.volume, "volume", nil, "declare a volume path (repeatable)")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set a config label k=v (repeatable)")
	fs.StringArrayVar(&f.annotations, "annotation", nil, "set a manifest annotation k=v (repeatable)")
	fs.StringVar(&f.author, "author", "", "author")
	fs.StringVar(&f.stop, "stop-signal", "", "stop signal (e.g. SIGTERM)")
	fs.StringArrayVar(&f.unsetEnv, "unset-env", nil, "remove an environment variable KEY (repeatable)")
	fs.StringArrayVar(&f.unsetLabel, "unset-label", nil, "remove a config label KEY (repeatable)")
	fs.StringArrayVar(&f.unsetAnnotation, "unset-annotation", nil, "remove a manifest annotation KEY (repeatable)")
	fs.StringArrayVar(&f.unsetExpose, "unset-expose", nil, "remove an exposed port PORT[/proto] (repeatable)")
	fs.StringArrayVar(&f.unsetVolume, "unset-volume", nil, "remove a declared volume (repeatable)")
	if withPlatform {
		fs.StringVar(&f.platform, "platform", "", "set the image's platform, os/arch[/variant] (build: also picks --from from an index; default linux on this machine's architecture)")
	}
}

// argList turns repeated flag values into an argument list: one value that
// is a JSON array is decoded; otherwise each value is one argument.
func argList(name string, vals []string) ([]string, error) {
	if len(vals) == 1 && strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
		var out []string
		if err := json.Unmarshal([]byte(vals[0]), &out); err != nil {
			return nil, fmt.Errorf("--%s %s: not a JSON array of strings: %v", name, vals[0], err)
		}
		if out == nil {
			out = []string{}
		}
		return out, nil
	}
	return vals, nil
}

func keyValues(name string, vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", name, v)
		}
		m[k] = val
	}
	return m, nil
}

func (f *configFlags) changes(cmd *cobra.Command) (mutate.ConfigChanges, error) {
	var c mutate.ConfigChanges
	var err error
	fl := cmd.Flags()
	if fl.Changed("entrypoint") {
		if c.Entrypoint, err = argList("entrypoint", f.entrypoint); err != nil {
			return c, err
		}
	}
	if fl.Changed("cmd") {
		if c.Cmd, err = argList("cmd", f.cmd); err != nil {
			return c, err
		}
	}
	c.Env, c.ExposedPorts, c.Volumes = f.env, f.expose, f.volume
	c.RemoveEnv, c.RemoveLabels, c.RemoveAnnotations, c.RemoveExposedPorts, c.RemoveVolumes = f.unsetEnv, f.unsetLabel, f.unsetAnnotation, f.unsetExpose, f.unsetVolume
	if c.Labels, err = keyValues("label", f.labels); err != nil {
		return c, err
	}
	if c.Annotations, err = keyValues("annotation", f.annotations); err != nil {
		return c, err
	}
	for name, dst := range map[string]**string{"workdir": &c.WorkingDir, "user": &c.User, "author": &c.Author, "stop-signal": &c.StopSignal} {
		if fl.Changed(name) {
			v, _ := fl.GetString(name)
			*dst = &v
		}
	}
	if f.platform != "" {
		p, err := image.ParsePlatform(f.platform)
		if err != nil {
			return c, err
		}
		c.Platform = &p
	}
	return c, nil
}

// layerFlags are the flags of commands that write a layer.
type layerFlags struct {
	compression string
	timestamp   string
	uid, gid    int
}

func (f *layerFlags) register(fs *pflag.FlagSet, owners bool) {
	fs.StringVar(&f.compression, "compression", "gzip", "layer compression: gzip, zstd or none")
	fs.StringVar(&f.timestamp, "timestamp", "", "clamp file times and set the creation time (unix seconds or RFC 3339; default $SOURCE_DATE_EPOCH)")
	if owners {
		fs.IntVar(&f.uid, "uid", -1, "owner uid for every file in the layer (-1 keeps each file's)")
		fs.IntVar(&f.gid, "gid", -1, "owner gid for every file in the layer (-1 keeps each file's)")
	} else {
		f.uid, f.gid = -1, -1
	}
}

func (f *layerFlags) options(createdBy string) (mutate.LayerOptions, error) {
	if f.compression == "" { // flags not registered: defaults
		f.compression, f.uid, f.gid = "gzip", -1, -1
	}
	c, err := layer.ParseCompression(f.compression)
	if err != nil {
		return mutate.LayerOptions{}, err
	}
	lo := mutate.LayerOptions{Compression: c, CreatedBy: createdBy}
	if f.uid >= 0 {
		lo.UID = &f.uid
	}
	if f.gid >= 0 {
		lo.GID = &f.gid
	}
	if f.timestamp == "" {
		lo.Timestamp, err = layer.TimestampFromEnv()
		return lo, err
	}
	t, err := parseTimestamp(f.timestamp)
	if err != nil {
		return lo, err
	}
	lo.Timestamp = &t
	return lo, nil
}

func parseTimestamp(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want unix seconds or RFC 3339", s)
	}
	return t.UTC(), nil
}
