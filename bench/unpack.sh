#!/usr/bin/env bash
# Unpack a 3-layer gzip image (built with umoci: the Go toolchain; /etc and the
# programs of /usr/bin; a layer deleting two directories and
# overwriting a file) with `lading unpack --rootless` and with
# `umoci unpack --rootless`, alternating, and print medians and the ratio.
# Also times GNU tar applying the same layers in order, as the machine's floor.
# Usage: bench/unpack.sh   (RUNS=5 for more runs)
source "$(dirname "$0")/lib.sh"
command -v umoci >/dev/null || { echo "umoci is required (apt-get install umoci)"; exit 1; }
build_lading

img="$BENCH_TMP/layout"
bench_image "$img"
"$LADING" inspect "oci:$img:bench" | sed -n '/^Size/p'
"$LADING" layers "oci:$img:bench" | tail -3

layers=$(cd "$img" && "$LADING" manifest "oci:$img:bench" | python3 -c 'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(sys.stdin)["layers"]]')
untar() { local d=$1; mkdir -p "$d"; for l in $layers; do tar -C "$d" -xzf "$img/blobs/sha256/$l"; done; }

# Every run unpacks into a fresh directory and nothing is deleted until the
# end: on ext4, creating files soon after deleting many costs several times
# more kernel time, which would drown the comparison.
WARM="$img"
echo "== timing ($RUNS runs each, alternating; page cache dropped and the layout read back before each)"
for i in $(seq "$RUNS"); do
	time_cmd umoci umoci unpack --rootless --image "$img:bench" "$BENCH_TMP/u$i"
	time_cmd lading "$LADING" unpack --rootless "oci:$img:bench" "$BENCH_TMP/l$i"
	time_cmd tar untar "$BENCH_TMP/t$i"
done
rss=$(peak_rss_mb "$LADING" unpack --rootless "oci:$img:bench" "$BENCH_TMP/rss")
printf "%-28s %8s s\n" "umoci unpack --rootless" "$(median umoci)" "lading unpack --rootless" "$(median lading)" "tar -xzf (layers in order)" "$(median tar)"
echo "lading/umoci: $(ratio lading umoci)   lading/tar: $(ratio lading tar)   lading peak RSS: ${rss} MB"
