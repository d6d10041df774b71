#!/usr/bin/env bash
# Push and pull a ~190 MB 3-layer gzip image (the one bench/unpack.sh builds
# with umoci) between an OCI layout and distribution v3 on loopback, with
# lading, crane, regctl and skopeo, alternating, and print medians, ratios
# to the best peer, and peak RSS.
#   cold push: a fresh registry (empty storage) for every run
#   cold pull: a fresh destination layout for every run
# lading runs as `lading copy` when the CLI has it; until then as the
# registry client's copy driver (registry/client's TestBenchCopy: blobs four
# at a time, files handed to the kernel on push, one hash per blob on pull).
# Floors, timed the same way: the largest layer pushed alone (an image of
# only that layer, by crane and lading), every blob sent by the registry
# (curl GETs in parallel, no hashing, nothing written), and what this disk
# needs to make the image's bytes durable (dd with fdatasync). A client can only be faster than the
# best peer by what the peer spends above these.
# UNPACK_LINKS="500mbit 1gbit" also times pull-and-unpack with loopback
# shaped to each rate (tc tbf; needs root), where the download is a larger
# share of the work than on bare loopback.
# Usage: bench/registry.sh   (RUNS=5 for more runs)
source "$(dirname "$0")/lib.sh"
DISTRIBUTION_VERSION=v3.1.2
command -v umoci >/dev/null || { echo "umoci is required (apt-get install umoci)"; exit 1; }
command -v skopeo >/dev/null || { echo "skopeo is required (apt-get install skopeo)"; exit 1; }

echo "== installing peers (crane $CRANE_VERSION, regctl $REGCTL_VERSION, distribution $DISTRIBUTION_VERSION)"
build_lading
install_crane
GOBIN="$GOBIN_DIR" go install "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION"
REGCTL="$GOBIN_DIR/regctl"
GOBIN="$GOBIN_DIR" go install "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
REGISTRY="$GOBIN_DIR/registry"
export HOME="$BENCH_TMP/home" # regctl keeps its settings there
mkdir -p "$HOME"
POLICY="$BENCH_TMP/policy.json"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"


img="$BENCH_TMP/layout"
bench_image "$img"
umoci gc --layout "$img"
du -sh "$img/blobs"

# Registries: one process per run, storage in a fresh directory.
REG_PID=
start_registry() { # sets HOST
	local dir="$BENCH_TMP/reg.$RANDOM$RANDOM"
	mkdir -p "$dir"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	HOST="127.0.0.1:$port"
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $HOST
EOF
	OTEL_TRACES_EXPORTER=none "$REGISTRY" serve "$dir/config.yml" >"$dir/log" 2>&1 &
	REG_PID=$!
	for _ in $(seq 200); do
		curl -fs "http://$HOST/v2/" >/dev/null && return 0
		sleep 0.05
	done
	echo "registry did not start:"; cat "$dir/log"; exit 1
}
stop_registry() {
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
	REG_PID=
}
SHAPED=
unshape() { [ -z "$SHAPED" ] || tc qdisc del dev lo root 2>/dev/null || true; SHAPED=; }
shape() { # shape RATE: loopback limited to RATE (tc tbf)
	tc qdisc add dev lo root tbf rate "$1" burst 256kb latency 50ms && SHAPED=1
}
trap 'unshape; stop_registry; [ -n "${KEEP:-}" ] || rm -rf "$BENCH_TMP"' EXIT

# lading copy, once it opens registry references; until then the driver.
start_registry
if "$LADING" copy "oci:$img:bench" "docker://$HOST/probe/img:v1" >/dev/null 2>&1; then
	LADING_MODE=cli
else
	LADING_MODE=driver
	(cd "$(repo_root)" && go test -c -o "$GOBIN_DIR/client.test" ./registry/client)
fi
stop_registry
echo "lading runs as: $LADING_MODE"

lading_push() { # lading_push HOST
	if [ "$LADING_MODE" = cli ]; then
		"$LADING" copy "oci:$img:bench" "docker://$1/bench/img:v1"
	else
		LADING_BENCH_COPY="push $img bench $1/bench/img:v1" "$GOBIN_DIR/client.test" -test.run '^TestBenchCopy$'
	fi
}
lading_pull() { # lading_pull HOST DIR
	if [ "$LADING_MODE" = cli ]; then
		"$LADING" copy "docker://$1/bench/img:v1" "oci:$2:v1"
	else
		LADING_BENCH_COPY="pull $1/bench/img:v1 $2 v1" "$GOBIN_DIR/client.test" -test.run '^TestBenchCopy$'
	fi
}
crane_push() { "$CRANE" push --insecure "$img" "$1/bench/img:v1"; }
crane_pull() { "$CRANE" pull --insecure --format=oci "$1/bench/img:v1" "$2"; }
regctl_push() { "$REGCTL" registry set --tls disabled "$1" >/dev/null && "$REGCTL" image copy "ocidir://$img:bench" "$1/bench/img:v1"; }
regctl_pull() { "$REGCTL" registry set --tls disabled "$1" >/dev/null && "$REGCTL" image copy "$1/bench/img:v1" "ocidir://$2:v1"; }
skopeo_push() { skopeo --policy "$POLICY" copy -q --dest-tls-verify=false "oci:$img:bench" "docker://$1/bench/img:v1"; }
skopeo_pull() { skopeo --policy "$POLICY" copy -q --src-tls-verify=false "docker://$1/bench/img:v1" "oci:$2:v1"; }

TOOLS="lading crane regctl skopeo"
WARM="$img"
echo "== cold push ($RUNS runs each, alternating; fresh registry each run)"
for i in $(seq "$RUNS"); do
	for t in $TOOLS; do
		start_registry
		time_cmd "push-$t" "${t}_push" "$HOST"
		stop_registry
	done
done

# Floors. The largest layer alone: an image of only that layer (the same
# blob, a config naming it), pushed by crane and by lading to a fresh
# registry. The registry takes an upload in one stream, hashing and writing
# it, so no client pushes the whole image faster than this.
one="$BENCH_TMP/one"
python3 - "$img" "$one" <<'PY'
import hashlib, json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst + "/blobs/sha256")
def path(root, d): return root + "/blobs/" + d.replace(":", "/", 1)
def put(doc):
    b = json.dumps(doc).encode()
    d = "sha256:" + hashlib.sha256(b).hexdigest()
    open(path(dst, d), "wb").write(b)
    return d, len(b)
m = json.load(open(path(src, json.load(open(src + "/index.json"))["manifests"][0]["digest"])))
i = max(range(len(m["layers"])), key=lambda i: m["layers"][i]["size"])
cfg = json.load(open(path(src, m["config"]["digest"])))
cfg["rootfs"]["diff_ids"] = [cfg["rootfs"]["diff_ids"][i]]
cfg.pop("history", None)
os.link(path(src, m["layers"][i]["digest"]), path(dst, m["layers"][i]["digest"]))
m["layers"] = [m["layers"][i]]
d, n = put(cfg)
m["config"] = {"mediaType": m["config"]["mediaType"], "digest": d, "size": n}
d, n = put(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": n,
    "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(dst + "/index.json", "w"))
open(dst + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
WARM="$img $one"
floor_crane() { "$CRANE" push --insecure "$one" "$1/bench/one:v1"; }
floor_lading() { "$LADING" copy "oci:$one:bench" "docker://$1/bench/one:v1"; }
for i in $(seq "$RUNS"); do
	for t in crane lading; do
		start_registry
		time_cmd "floor-push-$t" "floor_$t" "$HOST"
		stop_registry
	done
done

echo "== cold pull ($RUNS runs each, alternating; fresh destination each run)"
start_registry
skopeo_push "$HOST" >/dev/null
for i in $(seq "$RUNS"); do
	for t in $TOOLS; do
		time_cmd "pull-$t" "${t}_pull" "$HOST" "$BENCH_TMP/pull-$t-$i"
		rm -rf "$BENCH_TMP/pull-$t-$i"
	done
done

# Floors: every blob fetched at once and thrown away; the image's bytes
# written and made durable.
IMAGE_BLOBS=$(python3 -c '
import json, sys
d = sys.argv[1] + "/blobs/"
def blob(dg): return d + dg.replace(":", "/", 1)
m = json.load(open(blob(json.load(open(sys.argv[1] + "/index.json"))["manifests"][0]["digest"])))
print(" ".join([m["config"]["digest"]] + [l["digest"] for l in m["layers"]]))' "$img")
floor_get() { # floor_get HOST
	local b pids=()
	for b in $IMAGE_BLOBS; do
		curl -fsS -o /dev/null "http://$1/v2/bench/img/blobs/$b" &
		pids+=($!)
	done
	for b in "${pids[@]}"; do
		wait "$b" || return 1
	done
}
floor_disk() { # floor_disk DIR
	mkdir -p "$1"
	cat "$img"/blobs/sha256/* | dd of="$1/blobs" bs=1M conv=fdatasync status=none
}
for i in $(seq "$RUNS"); do
	time_cmd floor-get floor_get "$HOST"
	time_cmd floor-disk floor_disk "$BENCH_TMP/disk-$i"
	rm -rf "$BENCH_TMP/disk-$i"
done

# Pull and unpack: lading unpack straight from the registry (downloads of
# later layers overlapping the writing of earlier ones) against crane pull
# into a layout followed by lading unpack of it.
if [ "$LADING_MODE" = cli ]; then
	echo "== pull and unpack ($RUNS runs each, alternating; fresh directories each run)"
	unpack_lading() { "$LADING" unpack "docker://$1/bench/img:v1" "$2/root"; }
	unpack_crane() { "$CRANE" pull --insecure --format=oci "$1/bench/img:v1" "$2/layout" && "$LADING" unpack "oci:$2/layout" "$2/root"; }
	pullunpack_round() { # pullunpack_round PREFIX I: one timed run of each
		for t in lading crane; do
			mkdir -p "$BENCH_TMP/pu-$t-$2"
			time_cmd "${1}pullunpack-$t" "unpack_$t" "$HOST" "$BENCH_TMP/pu-$t-$2"
			rm -rf "$BENCH_TMP/pu-$t-$2"
		done
	}
	for i in $(seq "$RUNS"); do
		pullunpack_round "" "$i"
	done
	for rate in ${UNPACK_LINKS:-}; do
		if ! shape "$rate"; then
			echo "cannot shape loopback to $rate (needs root and tc's tbf): skipped"
			continue
		fi
		echo "== pull and unpack over loopback shaped to $rate"
		for i in $(seq "$RUNS"); do
			pullunpack_round "$rate-" "$i"
			time_cmd "pull-$rate-crane" crane_pull "$HOST" "$BENCH_TMP/pu-crane-$i"
			rm -rf "$BENCH_TMP/pu-crane-$i"
		done
		unshape
	done
fi

# Peak memory: one more run of each, under GNU time (through bash, which
# runs the tool's last command in its own process).
export LADING_MODE LADING GOBIN_DIR img CRANE REGCTL POLICY HOME
export -f lading_push lading_pull crane_push crane_pull regctl_push regctl_pull skopeo_push skopeo_pull
declare -A RSS_PULL RSS_PUSH
for t in $TOOLS; do
	RSS_PULL[$t]=$(peak_rss_mb bash -c "${t}_pull \"\$@\"" _ "$HOST" "$BENCH_TMP/rss-$t")
done
stop_registry
for t in $TOOLS; do
	start_registry
	RSS_PUSH[$t]=$(peak_rss_mb bash -c "${t}_push \"\$@\"" _ "$HOST")
	stop_registry
done

best() { # best PREFIX: the peer with the lowest median
	local b= bm=
	for t in crane regctl skopeo; do
		m=$(median "$1-$t")
		if [ -z "$b" ] || awk -v a="$m" -v b="$bm" 'BEGIN { exit !(a < b) }'; then b=$t; bm=$m; fi
	done
	echo "$b"
}
echo
printf "%-8s %10s %10s %10s %10s\n" tool "push s" "pull s" "push MB" "pull MB"
for t in $TOOLS; do
	printf "%-8s %10s %10s %10s %10s\n" "$t" "$(median "push-$t")" "$(median "pull-$t")" "${RSS_PUSH[$t]}" "${RSS_PULL[$t]}"
done
bp=$(best push); bl=$(best pull)
echo "lading/best push ($bp): $(ratio push-lading "push-$bp")   lading/best pull ($bl): $(ratio pull-lading "pull-$bl")   (lading as $LADING_MODE)"
echo "floors: the largest layer pushed alone: crane $(median floor-push-crane) s ($(ratio floor-push-crane push-crane) of its whole push), lading $(median floor-push-lading) s;" \
	"every blob fetched and discarded $(median floor-get) s; the image's bytes made durable on this disk $(median floor-disk) s ($(ratio floor-disk "pull-$bl") of $bl's pull)"
if [ "$LADING_MODE" = cli ]; then
	echo "pull and unpack: lading unpack from the registry $(median pullunpack-lading) s, crane pull + lading unpack $(median pullunpack-crane) s: $(ratio pullunpack-lading pullunpack-crane)"
	for rate in ${UNPACK_LINKS:-}; do
		[ -f "$BENCH_TMP/$rate-pullunpack-lading.times" ] || continue
		echo "pull and unpack at $rate: lading $(median "$rate-pullunpack-lading") s, crane pull + lading unpack $(median "$rate-pullunpack-crane") s: $(ratio "$rate-pullunpack-lading" "$rate-pullunpack-crane") (crane pull alone $(median "pull-$rate-crane") s)"
	done
fi
