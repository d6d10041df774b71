package image

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

type ruleCase struct {
	name     string
	mutate   []func(testing.TB, map[string]any)
	wantPath string // "" when the document must be accepted
	wantRule string
	wantErr  error // errdef.ErrInvalid when nil
}

func runRules(t *testing.T, base, mediaType string, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := doc(t, base)
			for _, f := range tc.mutate {
				f(t, m)
			}
			data := encode(t, m)
			err := Validate(mediaType, data)
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("rejected a valid document:\n%v\n%s", err, data)
				}
				return
			}
			wantErr := tc.wantErr
			if wantErr == nil {
				wantErr = errInvalid
			}
			checkProblem(t, err, tc.wantPath, tc.wantRule, wantErr)
		})
	}
}

func desc(mt, dg string, size int) map[string]any {
	return map[string]any{"mediaType": mt, "digest": dg, "size": size}
}

func TestManifestRules(t *testing.T) {
	sha512 := "sha512:" + strings.Repeat("ab", 64)
	runRules(t, baseOCIManifest, ocispec.MediaTypeImageManifest, []ruleCase{
		{name: "valid"},
		{name: "unknown field ignored", mutate: fns(set("x-extension", map[string]any{"a": []any{1, 2}}))},
		{name: "sha512 digest", mutate: fns(set("layers/0/digest", sha512))},
		{name: "schemaVersion missing", mutate: fns(del("schemaVersion")), wantPath: "manifest.schemaVersion", wantRule: "required"},
		{name: "schemaVersion string", mutate: fns(set("schemaVersion", "2")), wantPath: "manifest.schemaVersion", wantRule: "must be an integer, got string"},
		{name: "schemaVersion fraction", mutate: fns(set("schemaVersion", json.Number("2.0"))), wantPath: "manifest.schemaVersion", wantRule: "must be an integer"},
		{name: "schemaVersion 3", mutate: fns(set("schemaVersion", 3)), wantPath: "manifest.schemaVersion", wantRule: "must be 2"},
		{name: "schemaVersion 1", mutate: fns(set("schemaVersion", 1)), wantPath: "manifest.schemaVersion", wantRule: "schema 1 is not supported", wantErr: errUnsupported},
		{name: "mediaType schema1", mutate: fns(set("mediaType", MediaTypeDockerSchema1Signed)), wantPath: "manifest.mediaType", wantRule: "schema 1", wantErr: errUnsupported},
		{name: "mediaType is index", mutate: fns(set("mediaType", ocispec.MediaTypeImageIndex)), wantPath: "manifest.mediaType", wantRule: "must be " + ocispec.MediaTypeImageManifest},
		{name: "mediaType is docker", mutate: fns(set("mediaType", MediaTypeDockerManifest)), wantPath: "manifest.mediaType", wantRule: "must be " + ocispec.MediaTypeImageManifest},
		{name: "mediaType absent", mutate: fns(del("mediaType"))},
		{name: "mediaType null", mutate: fns(set("mediaType", nil)), wantPath: "manifest.mediaType", wantRule: "must be a string, got null"},
		{name: "ambiguous manifests field", mutate: fns(set("manifests", []any{})), wantPath: "manifest.manifests", wantRule: "ambiguous"},
		{name: "config missing", mutate: fns(del("config")), wantPath: "manifest.config", wantRule: "required"},
		{name: "config not object", mutate: fns(set("config", "x")), wantPath: "manifest.config", wantRule: "must be an object, got string"},
		{name: "config size string", mutate: fns(set("config/size", "12")), wantPath: "manifest.config.size", wantRule: "must be an integer, got string"},
		{name: "config size exponent", mutate: fns(set("config/size", json.Number("1e3"))), wantPath: "manifest.config.size", wantRule: "must be an integer"},
		{name: "config size negative", mutate: fns(set("config/size", -1)), wantPath: "manifest.config.size", wantRule: "must not be negative"},
		{name: "config size overflow", mutate: fns(set("config/size", json.Number("9223372036854775808"))), wantPath: "manifest.config.size", wantRule: "out of range"},
		{name: "config size missing", mutate: fns(del("config/size")), wantPath: "manifest.config.size", wantRule: "required"},
		{name: "config digest missing", mutate: fns(del("config/digest")), wantPath: "manifest.config.digest", wantRule: "required"},
		{name: "config mediaType missing", mutate: fns(del("config/mediaType")), wantPath: "manifest.config.mediaType", wantRule: "required"},
		{name: "config mediaType syntax", mutate: fns(set("config/mediaType", "application/vnd.example; charset=utf-8")), wantPath: "manifest.config.mediaType", wantRule: "RFC 6838"},
		{name: "config mediaType is a layer", mutate: fns(set("config/mediaType", ocispec.MediaTypeImageLayerGzip)), wantPath: "manifest.config.mediaType", wantRule: "not a config media type"},
		{name: "config mediaType artifact", mutate: fns(set("config/mediaType", "application/vnd.example.config.v1+json"), set("layers/0/mediaType", "application/vnd.example.data"))},
		{name: "digest uppercase hex", mutate: fns(set("layers/1/digest", strings.ToUpper(dgB[:7])+strings.ToUpper(dgB[7:]))), wantPath: "manifest.layers[1].digest", wantRule: "algorithm must be lowercase"},
		{name: "digest upper encoded", mutate: fns(set("layers/1/digest", "sha256:"+strings.ToUpper(dgB[7:]))), wantPath: "manifest.layers[1].digest", wantRule: "invalid sha256 digest"},
		{name: "digest short", mutate: fns(set("layers/1/digest", "sha256:abc")), wantPath: "manifest.layers[1].digest", wantRule: "64 lowercase hexadecimal"},
		{name: "sha512 short", mutate: fns(set("layers/1/digest", "sha512:"+strings.Repeat("a", 64))), wantPath: "manifest.layers[1].digest", wantRule: "128 lowercase hexadecimal"},
		{name: "digest no colon", mutate: fns(set("layers/1/digest", "sha256")), wantPath: "manifest.layers[1].digest", wantRule: "want algorithm:encoded"},
		{name: "digest bad encoded chars", mutate: fns(set("layers/1/digest", "multihash+base58:Qm/x")), wantPath: "manifest.layers[1].digest", wantRule: "encoded part"},
		// descriptor.md: implementations SHOULD allow digests of algorithms
		// they do not know, as long as they match the grammar.
		{name: "digest unknown algorithm", mutate: fns(set("layers/1/digest", "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"))},
		{name: "digest sha256+b64u", mutate: fns(set("layers/1/digest", "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"))},
		{name: "digest blake3", mutate: fns(set("layers/1/digest", "blake3:"+dgB[7:]))},
		{name: "digest bad grammar", mutate: fns(set("layers/1/digest", "multihash+:Qm")), wantPath: "manifest.layers[1].digest", wantRule: "algorithm must be"},
		{name: "layers missing", mutate: fns(del("layers")), wantPath: "manifest.layers", wantRule: "required"},
		{name: "layers null", mutate: fns(set("layers", nil)), wantPath: "manifest.layers", wantRule: "must be an array, got null"},
		{name: "layer not object", mutate: fns(set("layers/0", "x")), wantPath: "manifest.layers[0]", wantRule: "must be a descriptor object"},
		{name: "layer of image not a layer", mutate: fns(set("layers/1/mediaType", "application/vnd.example.data")), wantPath: "manifest.layers[1].mediaType", wantRule: "not a layer media type"},
		{name: "docker layer in OCI manifest", mutate: fns(set("layers/1/mediaType", MediaTypeDockerLayer))},
		{name: "layer urls valid", mutate: fns(set("layers/0/urls", []any{"https://example.com/layer?x=1#f", "http://[::1]:8080/a%20b"}))},
		{name: "layer urls relative", mutate: fns(set("layers/0/urls", []any{"https://ok.example/", "/relative/path"})), wantPath: "manifest.layers[0].urls[1]", wantRule: "not an absolute URI"},
		{name: "layer urls space", mutate: fns(set("layers/0/urls", []any{"https://a b/"})), wantPath: "manifest.layers[0].urls[0]", wantRule: "not an absolute URI"},
		{name: "layer urls bad escape", mutate: fns(set("layers/0/urls", []any{"https://a/%zz"})), wantPath: "manifest.layers[0].urls[0]", wantRule: "not an absolute URI"},
		{name: "layer urls not strings", mutate: fns(set("layers/0/urls", []any{1})), wantPath: "manifest.layers[0].urls[0]", wantRule: "must be a string"},
		{name: "layer annotations value", mutate: fns(set("layers/0/annotations", map[string]any{"k": true})), wantPath: `manifest.layers[0].annotations.k`, wantRule: "must be a string, got boolean"},
		{name: "annotations not object", mutate: fns(set("annotations", []any{"a"})), wantPath: "manifest.annotations", wantRule: "must be an object"},
		{name: "annotations value number", mutate: fns(set("annotations/com.example.n", 1)), wantPath: `manifest.annotations["com.example.n"]`, wantRule: "must be a string, got number"},
		{name: "annotation empty value", mutate: fns(set("annotations/com.example.e", ""))},
		{name: "annotation created", mutate: fns(set("annotations/"+ocispec.AnnotationCreated, "2023-01-02T03:04:05Z"))},
		{name: "annotation created bad", mutate: fns(set("annotations/"+ocispec.AnnotationCreated, "yesterday")), wantPath: `manifest.annotations["org.opencontainers.image.created"]`, wantRule: "RFC 3339"},
		{name: "annotation base digest bad", mutate: fns(set("annotations/"+ocispec.AnnotationBaseImageDigest, "sha256:1")), wantPath: `manifest.annotations["org.opencontainers.image.base.digest"]`, wantRule: "invalid sha256 digest"},
		{name: "artifactType invalid", mutate: fns(set("artifactType", "nope")), wantPath: "manifest.artifactType", wantRule: "RFC 6838"},
		{name: "artifactType number", mutate: fns(set("artifactType", 3)), wantPath: "manifest.artifactType", wantRule: "must be a string"},
		{name: "subject valid", mutate: fns(set("subject", desc(ocispec.MediaTypeImageManifest, dgA, 7682)))},
		{name: "subject index", mutate: fns(set("subject", desc(ocispec.MediaTypeImageIndex, dgA, 7682)))},
		{name: "subject layer", mutate: fns(set("subject", desc(ocispec.MediaTypeImageLayer, dgA, 1))), wantPath: "manifest.subject.mediaType", wantRule: "a subject must be a manifest or an index"},
		{name: "subject no digest", mutate: fns(set("subject", map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "size": 1})), wantPath: "manifest.subject.digest", wantRule: "required"},
		{name: "data valid", mutate: fns(set("layers/0", map[string]any{"mediaType": ocispec.MediaTypeImageLayer, "digest": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "size": 5, "data": "aGVsbG8="}))},
		{name: "data unpadded", mutate: fns(set("layers/0/data", "aGVsbG8")), wantPath: "manifest.layers[0].data", wantRule: "base64"},
		{name: "data url alphabet", mutate: fns(set("layers/0/data", "__8=")), wantPath: "manifest.layers[0].data", wantRule: "base64"},
		{name: "data line break", mutate: fns(set("layers/0/data", "aGVs\nbG8=")), wantPath: "manifest.layers[0].data", wantRule: "line breaks"},
		{name: "data wrong size", mutate: fns(set("layers/0/data", "aGVsbG8=")), wantPath: "manifest.layers[0].data", wantRule: "embedded data is 5 bytes but size is 32654"},
		{name: "data wrong digest", mutate: fns(set("layers/0/data", "aGVsbG8="), set("layers/0/size", 5)), wantPath: "manifest.layers[0].data", wantRule: "hashes to sha256:2cf24dba"},
		{name: "data not string", mutate: fns(set("layers/0/data", 5)), wantPath: "manifest.layers[0].data", wantRule: "must be a string"},
		{name: "platform on layer checked", mutate: fns(set("layers/0/platform", map[string]any{"os": "linux"})), wantPath: "manifest.layers[0].platform.architecture", wantRule: "required"},
	})
}

func TestArtifactManifestRules(t *testing.T) {
	runRules(t, baseArtifactManifest, ocispec.MediaTypeImageManifest, []ruleCase{
		{name: "valid"},
		{name: "empty layer", mutate: fns(set("layers/0", desc(ocispec.MediaTypeEmptyJSON, string(EmptyJSONDigest), 2)))},
		{name: "empty config without artifactType", mutate: fns(del("artifactType")), wantPath: "manifest.artifactType", wantRule: "required when config.mediaType is " + ocispec.MediaTypeEmptyJSON},
		{name: "empty descriptor wrong size", mutate: fns(set("config/size", 3), del("config/data")), wantPath: "manifest.config.size", wantRule: "must have size 2"},
		{name: "empty descriptor wrong digest", mutate: fns(set("config/digest", dgA), del("config/data")), wantPath: "manifest.config.digest", wantRule: "must have the digest of {}"},
		{name: "empty descriptor wrong data", mutate: fns(set("config/data", "W10=")), wantPath: "manifest.config.data", wantRule: "hashes to"},
		{name: "custom config keeps any layers", mutate: fns(set("config", desc("application/vnd.example.config.v1+json", dgB, 10)), del("artifactType"))},
	})
}

func TestDockerManifestRules(t *testing.T) {
	runRules(t, baseDockerManifest, MediaTypeDockerManifest, []ruleCase{
		{name: "valid"},
		{name: "no layers", mutate: fns(set("layers", []any{})), wantPath: "manifest.layers", wantRule: "at least one entry"},
		{name: "foreign layer with urls", mutate: fns(set("layers/0/mediaType", MediaTypeDockerForeignLayer), set("layers/0/urls", []any{"https://mcr.microsoft.com/l"}))},
		{name: "mediaType missing", mutate: fns(del("mediaType")), wantPath: "manifest.mediaType", wantRule: "required"},
		{name: "mediaType OCI", mutate: fns(set("mediaType", ocispec.MediaTypeImageManifest)), wantPath: "manifest.mediaType", wantRule: "must be " + MediaTypeDockerManifest},
		{name: "config OCI type", mutate: fns(set("config/mediaType", ocispec.MediaTypeImageConfig)), wantPath: "manifest.config.mediaType", wantRule: "must be " + MediaTypeDockerConfig},
		{name: "layer OCI type", mutate: fns(set("layers/0/mediaType", ocispec.MediaTypeImageLayerGzip)), wantPath: "manifest.layers[0].mediaType", wantRule: "not a Docker layer media type"},
		{name: "schema 1", mutate: fns(set("schemaVersion", 1)), wantPath: "manifest.schemaVersion", wantRule: "schema 1 is not supported", wantErr: errUnsupported},
	})
}

func TestIndexRules(t *testing.T) {
	runRules(t, baseOCIIndex, ocispec.MediaTypeImageIndex, []ruleCase{
		{name: "valid"},
		{name: "empty manifests", mutate: fns(set("manifests", []any{}))},
		{name: "nested index", mutate: fns(set("manifests/1", desc(ocispec.MediaTypeImageIndex, dgB, 3)))},
		{name: "manifests missing", mutate: fns(del("manifests")), wantPath: "index.manifests", wantRule: "required"},
		{name: "manifests object", mutate: fns(set("manifests", map[string]any{})), wantPath: "index.manifests", wantRule: "must be an array, got object"},
		{name: "schemaVersion 1", mutate: fns(set("schemaVersion", 1)), wantPath: "index.schemaVersion", wantRule: "must be 2, got 1"},
		{name: "mediaType manifest", mutate: fns(set("mediaType", ocispec.MediaTypeImageManifest)), wantPath: "index.mediaType", wantRule: "must be " + ocispec.MediaTypeImageIndex},
		{name: "ambiguous layers", mutate: fns(set("layers", []any{})), wantPath: "index.layers", wantRule: "ambiguous"},
		{name: "ambiguous config", mutate: fns(set("config", map[string]any{})), wantPath: "index.config", wantRule: "ambiguous"},
		{name: "entry bad digest", mutate: fns(set("manifests/1/digest", "sha256:zz")), wantPath: "index.manifests[1].digest", wantRule: "invalid sha256 digest"},
		{name: "entry size string", mutate: fns(set("manifests/0/size", "7143")), wantPath: "index.manifests[0].size", wantRule: "must be an integer"},
		{name: "entry mediaType bad", mutate: fns(set("manifests/1/mediaType", "xml")), wantPath: "index.manifests[1].mediaType", wantRule: "RFC 6838"},
		{name: "platform os missing", mutate: fns(del("manifests/0/platform/os")), wantPath: "index.manifests[0].platform.os", wantRule: "required"},
		{name: "platform architecture missing", mutate: fns(del("manifests/0/platform/architecture")), wantPath: "index.manifests[0].platform.architecture", wantRule: "required"},
		{name: "platform os empty", mutate: fns(set("manifests/0/platform/os", "")), wantPath: "index.manifests[0].platform.os", wantRule: "must not be empty"},
		{name: "platform variant number", mutate: fns(set("manifests/0/platform/variant", 8)), wantPath: "index.manifests[0].platform.variant", wantRule: "must be a string"},
		{name: "platform os.features string", mutate: fns(set("manifests/0/platform/os.features", "win32k")), wantPath: `index.manifests[0].platform["os.features"]`, wantRule: "must be an array"},
		{name: "platform os.features item", mutate: fns(set("manifests/0/platform/os.features", []any{1})), wantPath: `index.manifests[0].platform["os.features"][0]`, wantRule: "must be a string"},
		{name: "platform os.version number", mutate: fns(set("manifests/0/platform/os.version", 10)), wantPath: `index.manifests[0].platform["os.version"]`, wantRule: "must be a string"},
		{name: "platform features item", mutate: fns(set("manifests/0/platform/features", []any{false})), wantPath: "index.manifests[0].platform.features[0]", wantRule: "must be a string"},
		{name: "platform not object", mutate: fns(set("manifests/0/platform", "linux/amd64")), wantPath: "index.manifests[0].platform", wantRule: "must be an object"},
		{name: "artifactType", mutate: fns(set("artifactType", "application/vnd.example.sbom.v1"))},
		{name: "artifactType empty", mutate: fns(set("artifactType", "")), wantPath: "index.artifactType", wantRule: "RFC 6838"},
		{name: "entry artifactType empty", mutate: fns(set("manifests/0/artifactType", "")), wantPath: "index.manifests[0].artifactType", wantRule: "must not be empty"},
		{name: "subject", mutate: fns(set("subject", desc(ocispec.MediaTypeImageManifest, dgC, 1)))},
		{name: "annotations value", mutate: fns(set("annotations", map[string]any{"a": nil})), wantPath: "index.annotations.a", wantRule: "must be a string, got null"},
	})
}

func TestDockerListRules(t *testing.T) {
	runRules(t, baseDockerList, MediaTypeDockerManifestList, []ruleCase{
		{name: "valid"},
		{name: "mediaType missing", mutate: fns(del("mediaType")), wantPath: "index.mediaType", wantRule: "required"},
		{name: "platform missing", mutate: fns(del("manifests/0/platform")), wantPath: "index.manifests[0].platform", wantRule: "required"},
		{name: "entry not a manifest", mutate: fns(set("manifests/0/mediaType", MediaTypeDockerLayer)), wantPath: "index.manifests[0].mediaType", wantRule: "may only list image manifests"},
	})
}

func TestConfigRules(t *testing.T) {
	cases := []ruleCase{
		{name: "valid"},
		{name: "unknown fields ignored", mutate: fns(set("container_config", map[string]any{"Hostname": "x"}), set("config/Hostname", "h"))},
		{name: "optional fields null", mutate: fns(set("created", nil), set("author", nil), set("config/Cmd", nil), set("config/Env", nil), set("config/Volumes", nil), set("config/Labels", nil), set("history", nil))},
		{name: "config null", mutate: fns(set("config", nil))},
		{name: "created bad", mutate: fns(set("created", "2015-10-31 22:22:56")), wantPath: "config.created", wantRule: "RFC 3339"},
		{name: "created offset", mutate: fns(set("created", "2015-10-31T22:22:56+05:30"))},
		{name: "created offset out of range", mutate: fns(set("created", "2015-10-31T22:22:56+24:00")), wantPath: "config.created", wantRule: "RFC 3339"},
		{name: "created bad day", mutate: fns(set("created", "2015-02-30T22:22:56Z")), wantPath: "config.created", wantRule: "RFC 3339"},
		{name: "created number", mutate: fns(set("created", 1)), wantPath: "config.created", wantRule: "must be a string"},
		{name: "architecture missing", mutate: fns(del("architecture")), wantPath: "config.architecture", wantRule: "required"},
		{name: "architecture null", mutate: fns(set("architecture", nil)), wantPath: "config.architecture", wantRule: "required"},
		{name: "os empty", mutate: fns(set("os", "")), wantPath: "config.os", wantRule: "must not be empty"},
		{name: "os.features", mutate: fns(set("os.features", []any{"win32k"}), set("os.version", "10.0.14393.1066"), set("variant", "v3"))},
		{name: "os.features bad", mutate: fns(set("os.features", []any{1})), wantPath: `config["os.features"][0]`, wantRule: "must be a string"},
		{name: "rootfs missing", mutate: fns(del("rootfs")), wantPath: "config.rootfs", wantRule: "required"},
		{name: "rootfs type", mutate: fns(set("rootfs/type", "layer")), wantPath: "config.rootfs.type", wantRule: `must be "layers"`},
		{name: "rootfs type missing", mutate: fns(del("rootfs/type")), wantPath: "config.rootfs.type", wantRule: "required"},
		{name: "diff_id bad", mutate: fns(set("rootfs/diff_ids/1", "sha256:nope")), wantPath: "config.rootfs.diff_ids[1]", wantRule: "invalid sha256 digest"},
		{name: "diff_id unknown algorithm", mutate: fns(set("rootfs/diff_ids/0", "md5:d41d8cd98f00b204e9800998ecf8427e"))},
		{name: "diff_ids missing", mutate: fns(del("rootfs/diff_ids")), wantPath: "config.rootfs.diff_ids", wantRule: "required"},
		{name: "diff_ids empty", mutate: fns(set("rootfs/diff_ids", []any{}))},
		{name: "history created", mutate: fns(set("history/0/created", "x")), wantPath: "config.history[0].created", wantRule: "RFC 3339"},
		{name: "history empty_layer", mutate: fns(set("history/1/empty_layer", "yes")), wantPath: "config.history[1].empty_layer", wantRule: "must be a boolean"},
		{name: "history entry", mutate: fns(set("history/1", "x")), wantPath: "config.history[1]", wantRule: "must be an object"},
		{name: "history comment", mutate: fns(set("history/1/comment", 3)), wantPath: "config.history[1].comment", wantRule: "must be a string"},
		{name: "User number", mutate: fns(set("config/User", 0)), wantPath: "config.config.User", wantRule: "must be a string"},
		{name: "Env without =", mutate: fns(set("config/Env/0", "PATH")), wantPath: "config.config.Env[0]", wantRule: "KEY=value"},
		{name: "Env empty key", mutate: fns(set("config/Env/1", "=x")), wantPath: "config.config.Env[1]", wantRule: "KEY=value"},
		{name: "Env not array", mutate: fns(set("config/Env", "A=b")), wantPath: "config.config.Env", wantRule: "must be an array"},
		{name: "Cmd item", mutate: fns(set("config/Cmd", []any{"a", 1})), wantPath: "config.config.Cmd[1]", wantRule: "must be a string"},
		{name: "Entrypoint string", mutate: fns(set("config/Entrypoint", "/bin/sh")), wantPath: "config.config.Entrypoint", wantRule: "must be an array"},
		{name: "ExposedPorts forms", mutate: fns(set("config/ExposedPorts", map[string]any{"80": map[string]any{}, "53/udp": map[string]any{}, "9/sctp": map[string]any{}, "8000-8010/tcp": map[string]any{}}))},
		{name: "ExposedPorts proto", mutate: fns(set("config/ExposedPorts", map[string]any{"80/icmp": map[string]any{}})), wantPath: `config.config.ExposedPorts["80/icmp"]`, wantRule: "protocol must be tcp, udp or sctp"},
		{name: "ExposedPorts zero", mutate: fns(set("config/ExposedPorts", map[string]any{"0/tcp": map[string]any{}})), wantPath: `config.config.ExposedPorts["0/tcp"]`, wantRule: "from 1 to 65535"},
		{name: "ExposedPorts too big", mutate: fns(set("config/ExposedPorts", map[string]any{"65536": map[string]any{}})), wantPath: `config.config.ExposedPorts["65536"]`, wantRule: "from 1 to 65535"},
		{name: "ExposedPorts name", mutate: fns(set("config/ExposedPorts", map[string]any{"http": map[string]any{}})), wantPath: `config.config.ExposedPorts.http`, wantRule: "from 1 to 65535"},
		{name: "ExposedPorts value", mutate: fns(set("config/ExposedPorts", map[string]any{"80/tcp": true})), wantPath: `config.config.ExposedPorts["80/tcp"]`, wantRule: "must be an object"},
		{name: "Volumes empty key", mutate: fns(set("config/Volumes", map[string]any{"": map[string]any{}})), wantPath: `config.config.Volumes[""]`, wantRule: "non-empty path"},
		{name: "Volumes array", mutate: fns(set("config/Volumes", []any{"/data"})), wantPath: "config.config.Volumes", wantRule: "must be an object"},
		{name: "Labels value", mutate: fns(set("config/Labels/x", 1)), wantPath: "config.config.Labels.x", wantRule: "must be a string"},
		{name: "ArgsEscaped", mutate: fns(set("config/ArgsEscaped", "true")), wantPath: "config.config.ArgsEscaped", wantRule: "must be a boolean"},
		{name: "Memory reserved integer", mutate: fns(set("config/Memory", "1g")), wantPath: "config.config.Memory", wantRule: "must be an integer"},
		{name: "Healthcheck reserved object", mutate: fns(set("config/Healthcheck", map[string]any{"Test": []any{"NONE"}}))},
	}
	runRules(t, baseConfig, ocispec.MediaTypeImageConfig, cases)

	// The Docker format omits diff_ids for images without layers.
	t.Run("docker diff_ids missing", func(t *testing.T) {
		m := doc(t, baseConfig)
		del("rootfs/diff_ids")(t, m)
		data := encode(t, m)
		if err := Validate(MediaTypeDockerConfig, data); err != nil {
			t.Fatalf("Docker config without diff_ids: %v", err)
		}
		img, err := DecodeConfig(data)
		if err != nil {
			t.Fatalf("DecodeConfig: %v", err)
		}
		if img.RootFS.DiffIDs == nil || len(img.RootFS.DiffIDs) != 0 {
			t.Errorf("DiffIDs = %#v, want empty non-nil", img.RootFS.DiffIDs)
		}
	})
}

func TestLayoutHeaderRules(t *testing.T) {
	runRules(t, `{"imageLayoutVersion": "1.0.0"}`, ocispec.MediaTypeLayoutHeader, []ruleCase{
		{name: "valid"},
		{name: "extra field", mutate: fns(set("x", 1))},
		{name: "missing", mutate: fns(del("imageLayoutVersion")), wantPath: "oci-layout.imageLayoutVersion", wantRule: "required"},
		{name: "wrong version", mutate: fns(set("imageLayoutVersion", "1.1.0")), wantPath: "oci-layout.imageLayoutVersion", wantRule: `must be "1.0.0"`},
		{name: "number", mutate: fns(set("imageLayoutVersion", 1)), wantPath: "oci-layout.imageLayoutVersion", wantRule: "must be a string"},
	})
	if err := ValidateLayoutHeader([]byte(`["1.0.0"]`)); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("array header: %v", err)
	}
}

func fns(f ...func(testing.TB, map[string]any)) []func(testing.TB, map[string]any) { return f }

// TestDocumentLevel covers problems with the document as a whole.
func TestDocumentLevel(t *testing.T) {
	big := `{"schemaVersion":2,"pad":"` + strings.Repeat("x", MaxDocumentBytes) + `"}`
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	tests := []struct {
		name, data, wantPath, wantRule string
		wantErr                        error
	}{
		{"malformed", `{"schemaVersion": 2,`, "manifest", "malformed JSON", errInvalid},
		{"trailing data", baseOCIManifest + `{}`, "manifest", "data after the top-level value", errInvalid},
		{"trailing garbage", baseOCIManifest + `x`, "manifest", "malformed JSON", errInvalid},
		{"not an object", `[1,2]`, "manifest", "must be a JSON object, got array", errInvalid},
		{"invalid UTF-8", "{\"schemaVersion\": 2, \"x\": \"\xff\"}", "manifest", "UTF-8", errInvalid},
		{"duplicate key", `{"schemaVersion": 2, "schemaVersion": 2}`, "manifest.schemaVersion", "duplicate key", errInvalid},
		{"nested duplicate key", `{"annotations": {"a": "1", "a": "2"}}`, "manifest.annotations.a", "duplicate key", errInvalid},
		{"deep nesting", `{"x": ` + deep + `}`, "manifest.x" + strings.Repeat("[0]", maxDepth-1), "nested more than", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest([]byte(tc.data))
			checkProblem(t, err, tc.wantPath, tc.wantRule, tc.wantErr)
		})
	}
	t.Run("too large", func(t *testing.T) {
		for name, f := range map[string]func([]byte) error{
			"manifest": func(b []byte) error { _, err := DecodeManifest(b); return err },
			"index":    func(b []byte) error { _, err := DecodeIndex(b); return err },
			"config":   func(b []byte) error { _, err := DecodeConfig(b); return err },
			"validate": func(b []byte) error { return Validate("", b) },
		} {
			if err := f([]byte(big)); !errors.Is(err, errdef.ErrTooLarge) {
				t.Errorf("%s: %v, want ErrTooLarge", name, err)
			}
		}
	})
}

// TestAllProblemsReported checks that one document reports every problem.
func TestAllProblemsReported(t *testing.T) {
	m := doc(t, baseOCIManifest)
	set("schemaVersion", 3)(t, m)
	set("config/size", "1")(t, m)
	set("layers/0/digest", "sha256:x")(t, m)
	set("layers/1/mediaType", "text/plain")(t, m)
	set("annotations/k", 1)(t, m)
	_, err := DecodeManifest(encode(t, m))
	var ves ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("got %v", err)
	}
	want := []string{"manifest.schemaVersion", "manifest.config.size", "manifest.layers[0].digest", "manifest.layers[1].mediaType", "manifest.annotations.k"}
	if len(ves) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ves), len(want), err)
	}
	lines := strings.Split(err.Error(), "\n")
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w+": ") {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
		if ves[i].Err != errdef.ErrInvalid {
			t.Errorf("problem %d category = %v", i, ves[i].Err)
		}
	}
}

func TestProblemCap(t *testing.T) {
	layers := make([]any, maxProblems+50)
	for i := range layers {
		layers[i] = desc(ocispec.MediaTypeImageLayer, "sha256:bad", 1)
	}
	m := doc(t, baseOCIManifest)
	set("layers", layers)(t, m)
	err := Validate(ocispec.MediaTypeImageManifest, encode(t, m))
	var ves ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("got %v", err)
	}
	if len(ves) != maxProblems+1 || !strings.Contains(ves[maxProblems].Rule, "50 more problems") {
		t.Errorf("got %d problems, last %q", len(ves), ves[len(ves)-1].Rule)
	}
}

// TestExactKeys checks that a key differing only in case from a field is
// refused, when reading too: encoding/json's case-insensitive matching would
// let it fill or shadow the field, so two readers would see different blobs.
func TestExactKeys(t *testing.T) {
	m := doc(t, baseOCIManifest)
	set("MediaType", "application/evil")(t, m)
	set("SchemaVersion", 1)(t, m)
	set("Layers", []any{})(t, m)
	data := encode(t, m)
	_, err := DecodeManifest(data)
	for _, k := range []string{"MediaType", "SchemaVersion", "Layers"} {
		checkProblem(t, err, "manifest."+k, "differs only in case", errInvalid)
	}
	checkProblem(t, Validate("", data), "manifest.Layers", "differs only in case", errInvalid)

	idx := doc(t, baseOCIIndex)
	set("Manifests", []any{})(t, idx)
	_, err = DecodeIndex(encode(t, idx))
	checkProblem(t, err, "index.Manifests", "differs only in case", errInvalid)

	cfg := doc(t, baseConfig)
	set("RootFS", map[string]any{"type": "layers", "diff_ids": []any{}})(t, cfg)
	_, err = DecodeConfig(encode(t, cfg))
	checkProblem(t, err, "config.RootFS", "differs only in case", errInvalid)
}

// TestReadIsTolerant checks that what the specification states as SHOULD,
// and values lading does not act on, stop a validation but not a read,
// which reports them as warnings.
func TestReadIsTolerant(t *testing.T) {
	m := doc(t, baseOCIManifest)
	set("annotations/"+ocispec.AnnotationBaseImageDigest, "")(t, m) // what buildah 1.28 writes
	set("annotations/"+ocispec.AnnotationCreated, "yesterday")(t, m)
	data := encode(t, m)
	checkProblem(t, Validate(ocispec.MediaTypeImageManifest, data), `manifest.annotations["org.opencontainers.image.base.digest"]`, "invalid digest", errInvalid)
	checkProblem(t, Validate(ocispec.MediaTypeImageManifest, data), `manifest.annotations["org.opencontainers.image.created"]`, "RFC 3339", errInvalid)
	var warns ValidationErrors
	mf, err := DecodeManifest(data, Warnings(&warns))
	if err != nil {
		t.Fatalf("read refused: %v", err)
	}
	if len(warns) != 2 || len(mf.Layers) != 2 {
		t.Fatalf("warnings %v", warns)
	}
	checkProblem(t, warns, `manifest.annotations["org.opencontainers.image.base.digest"]`, "invalid digest", errInvalid)
	if _, err := DecodeManifest(data, Strict()); err == nil {
		t.Error("a strict decode accepted the annotations")
	}

	cfg := doc(t, baseConfig)
	set("created", "last week")(t, cfg)
	set("config/Env", []any{"NOVALUE"})(t, cfg)
	set("config/ExposedPorts", map[string]any{"http": map[string]any{}})(t, cfg)
	cdata := encode(t, cfg)
	warns = nil
	if _, err := DecodeConfig(cdata, Warnings(&warns)); err != nil || len(warns) != 3 {
		t.Fatalf("config read: %v, warnings %v", err, warns)
	}
	checkProblem(t, Validate(ocispec.MediaTypeImageConfig, cdata), "config.config.Env[0]", "KEY=value", errInvalid)

	// What breaks integrity stops a read too.
	set("rootfs/diff_ids/0", "sha256:short")(t, cfg)
	if _, err := DecodeConfig(encode(t, cfg)); err == nil {
		t.Error("a malformed diff_id was read")
	}
}

func TestDecodeResults(t *testing.T) {
	mf, err := DecodeManifest([]byte(baseArtifactManifest))
	if err != nil {
		t.Fatal(err)
	}
	if mf.ArtifactType != "application/vnd.example+type" || mf.Config.MediaType != ocispec.MediaTypeEmptyJSON ||
		string(mf.Config.Data) != "{}" || mf.Config.Size != 2 || mf.Layers[0].Size != 1234 {
		t.Errorf("manifest decoded wrongly: %+v", mf)
	}
	idx, err := DecodeIndex([]byte(baseOCIIndex))
	if err != nil {
		t.Fatal(err)
	}
	p := idx.Manifests[0].Platform
	if len(idx.Manifests) != 2 || p == nil || p.Architecture != "arm64" || p.Variant != "v8" || p.OSFeatures[0] != "f" {
		t.Errorf("index decoded wrongly: %+v", idx)
	}
	img, err := DecodeConfig([]byte(baseConfig))
	if err != nil {
		t.Fatal(err)
	}
	if img.Created == nil || img.Created.Nanosecond() != 15925234 || img.Config.User != "alice" ||
		len(img.RootFS.DiffIDs) != 2 || img.RootFS.DiffIDs[1] != dgB || !img.History[1].EmptyLayer ||
		img.Config.Env[1] != "EMPTY=" {
		t.Errorf("config decoded wrongly: %+v", img)
	}
	if _, ok := img.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", img.Config.ExposedPorts)
	}
	// A document of the other kind is refused by each decoder.
	if _, err := DecodeManifest([]byte(baseOCIIndex)); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("DecodeManifest(index) = %v", err)
	}
	if _, err := DecodeIndex([]byte(baseDockerManifest)); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("DecodeIndex(manifest) = %v", err)
	}
	if _, err := DecodeConfig([]byte(baseOCIIndex)); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("DecodeConfig(index) = %v", err)
	}
}

func TestValidateSniffing(t *testing.T) {
	tests := []struct {
		name, data, wantType string
		wantErr              error
	}{
		{"oci manifest", baseOCIManifest, ocispec.MediaTypeImageManifest, nil},
		{"docker manifest", baseDockerManifest, MediaTypeDockerManifest, nil},
		{"manifest by shape", strings.Replace(baseOCIManifest, `"mediaType": "application/vnd.oci.image.manifest.v1+json",`, "", 1), ocispec.MediaTypeImageManifest, nil},
		{"index", baseOCIIndex, ocispec.MediaTypeImageIndex, nil},
		{"docker list", baseDockerList, MediaTypeDockerManifestList, nil},
		{"index by shape", `{"schemaVersion": 2, "manifests": []}`, ocispec.MediaTypeImageIndex, nil},
		{"config", baseConfig, ocispec.MediaTypeImageConfig, nil},
		{"layout", `{"imageLayoutVersion": "1.0.0"}`, ocispec.MediaTypeLayoutHeader, nil},
		{"descriptor", `{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "` + dgA + `"}`, ocispec.MediaTypeDescriptor, nil},
		{"schema 1 by version", `{"schemaVersion": 1, "name": "x", "fsLayers": []}`, MediaTypeDockerSchema1, errUnsupported},
		{"schema 1 by type", `{"schemaVersion": 1, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}`, MediaTypeDockerSchema1Signed, errUnsupported},
		{"unknown type", `{"mediaType": "application/vnd.example.thing"}`, "application/vnd.example.thing", errUnsupported},
		{"unknown shape", `{"hello": "world"}`, "", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MediaTypeOf([]byte(tc.data)); got != tc.wantType {
				t.Errorf("MediaTypeOf = %q, want %q", got, tc.wantType)
			}
			err := Validate("", []byte(tc.data))
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, errUnsupported) && strings.HasPrefix(tc.name, "schema 1") && !strings.Contains(err.Error(), "schema 1 is not supported") {
				t.Errorf("message does not say schema 1 is not supported: %v", err)
			}
		})
	}
	if MediaTypeOf([]byte("{")) != "" {
		t.Error("MediaTypeOf(malformed) != \"\"")
	}
}

func TestValidateMediaTypes(t *testing.T) {
	tests := []struct {
		mediaType, data string
		wantErr         error
	}{
		{ocispec.MediaTypeEmptyJSON, ` { } `, nil},
		{ocispec.MediaTypeEmptyJSON, `{"a":1}`, errInvalid},
		{ocispec.MediaTypeDescriptor, `{"mediaType": "a/b", "size": 0, "digest": "` + dgA + `"}`, nil},
		{ocispec.MediaTypeDescriptor, `{"mediaType": "a/b", "size": 0}`, errInvalid},
		{MediaTypeDockerSchema1, `{}`, errUnsupported},
		{ocispec.MediaTypeImageLayerGzip, `{}`, errUnsupported},
		{MediaTypeDockerConfig, baseConfig, nil},
		// A document validated as one type but declaring another is refused.
		{ocispec.MediaTypeImageIndex, baseOCIManifest, errInvalid},
		{MediaTypeDockerManifest, baseOCIManifest, errInvalid},
	}
	for _, tc := range tests {
		err := Validate(tc.mediaType, []byte(tc.data))
		if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("Validate(%s, %s) = %v, want %v", tc.mediaType, tc.data, err, tc.wantErr)
		}
	}
}

func TestValidateDigest(t *testing.T) {
	tests := []struct {
		d       string
		wantErr error
	}{
		{dgA, nil},
		{"sha512:" + strings.Repeat("0f", 64), nil},
		{"", errInvalid},
		{"sha256", errInvalid},
		{":" + dgA[7:], errInvalid},
		{"sha256:", errInvalid},
		{"sha256:" + dgA[8:], errInvalid},
		{"sha256:" + dgA[7:] + "0", errInvalid},
		{"sha256:" + strings.ToUpper(dgA[7:]), errInvalid},
		{"sha256:" + strings.Repeat("g", 64), errInvalid},
		{"sha256+:abc", errInvalid},
		{"-sha256:abc", errInvalid},
		{"sha..256:abc", errInvalid},
		{"Sha256:abc", errInvalid},
		{"sha256:ab cd", errInvalid},
		{"blake3:" + strings.Repeat("A", 64), errInvalid},
		{"blake3:" + dgA[7:], errUnsupported},
		{"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", errUnsupported},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", errUnsupported},
	}
	for _, tc := range tests {
		err := ValidateDigest(digestOf(tc.d))
		if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("ValidateDigest(%q) = %v, want %v", tc.d, err, tc.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "digest: ") {
			t.Errorf("ValidateDigest(%q) message %q does not name the digest", tc.d, err)
		}
	}
}

func TestValidateDescriptor(t *testing.T) {
	good := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: dgA, Size: 10,
		Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	if err := ValidateDescriptor("index.manifests[0]", good); err != nil {
		t.Fatalf("valid descriptor: %v", err)
	}
	if err := ValidateDescriptor("", ocispec.DescriptorEmptyJSON); err != nil {
		t.Fatalf("DescriptorEmptyJSON: %v", err)
	}
	tests := []struct {
		name     string
		edit     func(*ocispec.Descriptor)
		wantPath string
		wantRule string
		wantErr  error
	}{
		{"no media type", func(d *ocispec.Descriptor) { d.MediaType = "" }, "index.manifests[0].mediaType", "required", errInvalid},
		{"bad media type", func(d *ocispec.Descriptor) { d.MediaType = "a/b/c" }, "index.manifests[0].mediaType", "RFC 6838", errInvalid},
		{"no digest", func(d *ocispec.Descriptor) { d.Digest = "" }, "index.manifests[0].digest", "required", errInvalid},
		{"bad algorithm", func(d *ocispec.Descriptor) { d.Digest = "Foo:bar" }, "index.manifests[0].digest", "algorithm must be", errInvalid},
		{"negative size", func(d *ocispec.Descriptor) { d.Size = -5 }, "index.manifests[0].size", "must not be negative", errInvalid},
		{"bad url", func(d *ocispec.Descriptor) { d.URLs = []string{"x"} }, "index.manifests[0].urls[0]", "absolute URI", errInvalid},
		{"data mismatch", func(d *ocispec.Descriptor) { d.Data = []byte("0123456789") }, "index.manifests[0].data", "hashes to", errInvalid},
		{"data size", func(d *ocispec.Descriptor) { d.Data = []byte("x") }, "index.manifests[0].data", "embedded data is 1 bytes", errInvalid},
		{"artifactType", func(d *ocispec.Descriptor) { d.ArtifactType = "x" }, "index.manifests[0].artifactType", "RFC 6838", errInvalid},
		{"platform os", func(d *ocispec.Descriptor) { d.Platform = &ocispec.Platform{Architecture: "amd64"} }, "index.manifests[0].platform.os", "must not be empty", errInvalid},
		{"annotation created", func(d *ocispec.Descriptor) {
			d.Annotations = map[string]string{ocispec.AnnotationCreated: "now"}
		}, `index.manifests[0].annotations["org.opencontainers.image.created"]`, "RFC 3339", errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := good
			tc.edit(&d)
			checkProblem(t, ValidateDescriptor("index.manifests[0]", d), tc.wantPath, tc.wantRule, tc.wantErr)
		})
	}
	d := good
	d.Size = -1
	checkProblem(t, ValidateDescriptor("", d), "descriptor.size", "negative", errInvalid)
}

func TestValidMediaType(t *testing.T) {
	for mt, want := range map[string]bool{
		"application/vnd.oci.image.manifest.v1+json": true,
		"a/b":                           true,
		"A1/x!#$&^_.+-":                 true,
		"application/vnd.example+type":  true,
		"":                              false,
		"a":                             false,
		"/b":                            false,
		"a/":                            false,
		"a/b/c":                         false,
		"a/+b":                          false,
		"a/b; x=y":                      false,
		"a b/c":                         false,
		strings.Repeat("a", 127) + "/b": true,
		strings.Repeat("a", 128) + "/b": false,
	} {
		if got := ValidMediaType(mt); got != want {
			t.Errorf("ValidMediaType(%q) = %v, want %v", mt, got, want)
		}
	}
}

func TestManifestWithoutLayers(t *testing.T) {
	// manifest.md: layers SHOULD have an entry (the schema's minItems), but
	// umoci new writes none: invalid to a validation, readable.
	doc := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	checkProblem(t, Validate("", doc), "manifest.layers", "at least one entry", errInvalid)
	var warns ValidationErrors
	if m, err := DecodeManifest(doc, Warnings(&warns)); err != nil || m.Layers == nil || len(warns) != 1 {
		t.Fatalf("manifest with no layers: %v, %v", err, warns)
	}
}
