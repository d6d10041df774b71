package image

import (
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// validateConfig checks an image configuration tree. requireDiffIDs holds the
// document to the OCI schema, where rootfs.diff_ids is required; Docker
// writes configs of images without layers with no diff_ids at all.
func validateConfig(c *checker, o *object, requireDiffIDs bool) *ocispec.Image {
	img := &ocispec.Image{}
	if s, p, ok := c.getString(o, "", "created", false); ok {
		if validRFC3339(s) {
			img.Created = parseTime(s)
		} else {
			c.warn(p, "%q is not an RFC 3339 date-time", s)
		}
	}
	img.Author, _, _ = c.getString(o, "", "author", false)
	var ok bool
	var p string
	if img.Architecture, p, ok = c.getString(o, "", "architecture", true); ok && img.Architecture == "" {
		c.invalid(p, "must not be empty")
	}
	if img.OS, p, ok = c.getString(o, "", "os", true); ok && img.OS == "" {
		c.invalid(p, "must not be empty")
	}
	img.OSVersion, _, _ = c.getString(o, "", "os.version", false)
	img.OSFeatures, _, _ = c.getStrings(o, "", "os.features", false)
	img.Variant, _, _ = c.getString(o, "", "variant", false)

	if co, cp, present := c.getObject(o, "", "config", false); present {
		img.Config = c.parseExecConfig(co, cp)
	}

	img.RootFS.DiffIDs = []digest.Digest{}
	if ro, rp, present := c.getObject(o, "", "rootfs", true); present {
		if t, tp, ok := c.getString(ro, rp, "type", true); ok {
			img.RootFS.Type = t
			if t != "layers" {
				c.invalid(tp, `must be "layers", got %q`, t)
			}
		}
		if ids, ip, ok := c.getStrings(ro, rp, "diff_ids", requireDiffIDs); ok {
			for i, id := range ids {
				c.checkDigest(joinIndex(ip, i), id)
				img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.Digest(id))
			}
		}
	}

	if arr, hp, present := c.getArray(o, "", "history", false); present {
		img.History = make([]ocispec.History, 0, len(arr))
		for i, v := range arr {
			p := joinIndex(hp, i)
			ho, ok := v.(*object)
			if !ok {
				c.wrongType(p, "an object", v)
				continue
			}
			img.History = append(img.History, c.parseHistory(ho, p))
		}
	}
	return img
}

func (c *checker) parseHistory(o *object, p string) ocispec.History {
	var h ocispec.History
	if s, tp, ok := c.getString(o, p, "created", false); ok {
		if validRFC3339(s) {
			h.Created = parseTime(s)
		} else {
			c.warn(tp, "%q is not an RFC 3339 date-time", s)
		}
	}
	h.Author, _, _ = c.getString(o, p, "author", false)
	h.CreatedBy, _, _ = c.getString(o, p, "created_by", false)
	h.Comment, _, _ = c.getString(o, p, "comment", false)
	h.EmptyLayer, _ = c.getBool(o, p, "empty_layer")
	return h
}

// parseExecConfig reads the execution parameters, the "config" object of an
// image configuration.
func (c *checker) parseExecConfig(o *object, p string) ocispec.ImageConfig {
	var ic ocispec.ImageConfig
	ic.User, _, _ = c.getString(o, p, "User", false)
	ic.ExposedPorts, _ = c.getSet(o, p, "ExposedPorts", c.checkPort)
	if env, ep, ok := c.getStrings(o, p, "Env", false); ok || env != nil {
		ic.Env = env
		for i, e := range env {
			if k, _, found := strings.Cut(e, "="); !found || k == "" {
				c.warn(joinIndex(ep, i), "%q is not of the form KEY=value", e)
			}
		}
	}
	ic.Entrypoint, _, _ = c.getStrings(o, p, "Entrypoint", false)
	ic.Cmd, _, _ = c.getStrings(o, p, "Cmd", false)
	ic.Volumes, _ = c.getSet(o, p, "Volumes", func(kp, k string) {
		if k == "" || strings.IndexByte(k, 0) >= 0 {
			c.warn(kp, "a volume must be a non-empty path without NUL bytes")
		}
	})
	ic.WorkingDir, _, _ = c.getString(o, p, "WorkingDir", false)
	ic.Labels, _, _ = c.getStringMap(o, p, "Labels")
	ic.StopSignal, _, _ = c.getString(o, p, "StopSignal", false)
	//lint:ignore SA1019 kept for compatibility with Docker images
	ic.ArgsEscaped, _ = c.getBool(o, p, "ArgsEscaped")
	// Reserved for compatibility with Docker: the types are checked, the
	// values are not kept.
	for _, k := range []string{"Memory", "MemorySwap", "CpuShares"} {
		c.getInt(o, p, k, false)
	}
	c.getObject(o, p, "Healthcheck", false)
	return ic
}

// checkPort checks an ExposedPorts key: "port", "port/proto" or a range
// "low-high[/proto]", with ports 1-65535 and proto tcp, udp or sctp.
func (c *checker) checkPort(p, k string) {
	ports, proto, hasProto := strings.Cut(k, "/")
	if hasProto && proto != "tcp" && proto != "udp" && proto != "sctp" {
		c.warn(p, "exposed port %q: protocol must be tcp, udp or sctp", k)
		return
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	l, okL := portNumber(lo)
	h, okH := l, okL
	if isRange {
		h, okH = portNumber(hi)
	}
	if !okL || !okH || h < l {
		c.warn(p, "exposed port %q: want port[/tcp|udp|sctp] with a port from 1 to 65535", k)
	}
}

func portNumber(s string) (int, bool) {
	if s == "" || len(s) > 5 || !digits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= 65535
}
