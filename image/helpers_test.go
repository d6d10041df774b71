package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-oci/lading/errdef"
)

// Digests used by the test documents.
const (
	dgA = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
	dgB = "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
	dgC = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
)

const baseOCIManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "` + dgC + `", "size": 7023},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "` + dgA + `", "size": 32654},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "` + dgB + `", "size": 16724}
  ],
  "annotations": {"com.example.key1": "value1"}
}`

const baseArtifactManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example+type",
  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "` + string(EmptyJSONDigest) + `", "size": 2, "data": "e30="},
  "layers": [{"mediaType": "application/vnd.example.data.v1", "digest": "` + dgA + `", "size": 1234}]
}`

const baseDockerManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "` + dgC + `", "size": 1469},
  "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "` + dgA + `", "size": 2479}]
}`

const baseOCIIndex = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dgA + `", "size": 7143,
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": ["f"]}},
    {"mediaType": "application/xml", "digest": "` + dgB + `", "size": 7143}
  ]
}`

const baseDockerList = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "` + dgA + `", "size": 528,
     "platform": {"architecture": "amd64", "os": "linux"}}
  ]
}`

const baseConfig = `{
  "created": "2015-10-31T22:22:56.015925234Z",
  "architecture": "amd64",
  "os": "linux",
  "config": {
    "User": "alice",
    "ExposedPorts": {"8080/tcp": {}},
    "Env": ["PATH=/usr/bin", "EMPTY="],
    "Entrypoint": ["/bin/app"],
    "Cmd": ["--foreground"],
    "Volumes": {"/var/data": {}},
    "WorkingDir": "/home/alice",
    "Labels": {"com.example.k": "v"},
    "StopSignal": "SIGTERM"
  },
  "rootfs": {"type": "layers", "diff_ids": ["` + dgA + `", "` + dgB + `"]},
  "history": [{"created": "2015-10-31T22:22:54.690851953Z", "created_by": "/bin/sh -c true"}, {"empty_layer": true}]
}`

// doc parses a JSON document into a mutable tree (numbers kept verbatim).
func doc(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test document: %v", err)
	}
	return m
}

// walk follows a "/"-separated path of keys and indexes to the parent of its
// last element.
func walk(t testing.TB, m map[string]any, path string) (any, string) {
	t.Helper()
	parts := strings.Split(path, "/")
	var cur any = m
	for _, p := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, _ := strconv.Atoi(p)
			cur = c[i]
		default:
			t.Fatalf("path %s: %q is not a container", path, p)
		}
	}
	return cur, parts[len(parts)-1]
}

// set returns a mutation that sets path to v.
func set(path string, v any) func(testing.TB, map[string]any) {
	return func(t testing.TB, m map[string]any) {
		parent, last := walk(t, m, path)
		switch c := parent.(type) {
		case map[string]any:
			c[last] = v
		case []any:
			i, _ := strconv.Atoi(last)
			c[i] = v
		default:
			t.Fatalf("set %s: parent is %T", path, parent)
		}
	}
}

// del returns a mutation that removes the key at path.
func del(path string) func(testing.TB, map[string]any) {
	return func(t testing.TB, m map[string]any) {
		parent, last := walk(t, m, path)
		delete(parent.(map[string]any), last)
	}
}

func encode(t testing.TB, m map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkProblem asserts that err is a ValidationErrors with an entry at
// wantPath (document and path as rendered) whose rule contains wantRule, and
// that err matches wantErr.
func checkProblem(t *testing.T, err error, wantPath, wantRule string, wantErr error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a problem at %s (%s)", wantPath, wantRule)
	}
	if !errors.Is(err, wantErr) {
		t.Errorf("error does not match %v: %v", wantErr, err)
	}
	var ves ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("error is %T, not ValidationErrors: %v", err, err)
	}
	for _, ve := range ves {
		where := (&ValidationError{Document: ve.Document, Path: ve.Path}).Error()
		where = strings.TrimSuffix(where, ": ")
		if where == wantPath && strings.Contains(ve.Rule, wantRule) {
			return
		}
	}
	t.Errorf("no problem at %s containing %q; got:\n%v", wantPath, wantRule, err)
}

var (
	errInvalid     = errdef.ErrInvalid
	errUnsupported = errdef.ErrUnsupported
)

func digestOf(s string) digest.Digest { return digest.Digest(s) }
