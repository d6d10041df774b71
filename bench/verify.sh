#!/usr/bin/env bash
# Verify (fsck) a layout of a few hundred MB: `lading verify` (every blob
# hashed in parallel, plus references, diff_ids and document validity) against
# `sha256sum` of the same blobs on one core (the machine's single-core hash
# speed).
# Usage: bench/verify.sh   (RUNS=5 for more runs)
source "$(dirname "$0")/lib.sh"
build_lading

img="$BENCH_TMP/layout"
"$LADING" build /usr/local/go -t "oci:$img:go" --compression none >/dev/null
"$LADING" build /usr/bin -t "oci:$img:bin" --compression gzip >/dev/null
bytes=$(du -sb "$img/blobs" | cut -f1)
echo "== layout: $(find "$img/blobs" -type f | wc -l) blobs, $((bytes / 1000000)) MB (page cache warm)"
WARM="$img"

echo "== timing ($RUNS runs each, alternating)"
for i in $(seq "$RUNS"); do
	time_cmd lading "$LADING" verify "$img"
	time_cmd sha256sum sh -c "cd '$img/blobs/sha256' && sha256sum * >/dev/null"
done
mbps() { awk -v b="$bytes" -v t="$(median "$1")" 'BEGIN { printf "%.0f MB/s", b / t / 1e6 }'; }
printf "%-40s %8s s  %s\n" "lading verify (2 cores)" "$(median lading)" "$(mbps lading)" "sha256sum (1 core)" "$(median sha256sum)" "$(mbps sha256sum)"
echo "lading/sha256sum: $(ratio lading sha256sum)   per core in use vs sha256sum: $(awk -v a="$(median sha256sum)" -v b="$(median lading)" 'BEGIN { printf "%.0f%%", a / b / 2 * 100 }')"
