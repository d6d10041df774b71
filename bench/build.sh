#!/usr/bin/env bash
# Build one layer from a large tree (default: a copy of /usr/local/go) with
# `lading build` (gzip and zstd) and with `crane append` of the same tree as a
# ready tar, alternating, and print medians and ratios.
# Usage: bench/build.sh [TREE]   (RUNS=5 for more runs)
source "$(dirname "$0")/lib.sh"
build_lading
install_crane

tree="$BENCH_TMP/tree"
cp -a "${1:-/usr/local/go}" "$tree"
tar -C "$tree" -cf "$BENCH_TMP/tree.tar" .
echo "== tree: $(du -sh "$tree" | cut -f1), $(find "$tree" | wc -l) entries; tar $(du -h "$BENCH_TMP/tree.tar" | cut -f1)"

WARM="$tree $BENCH_TMP/tree.tar"
echo "== timing ($RUNS runs each, alternating; page cache dropped and the inputs read back before each)"
for i in $(seq "$RUNS"); do
	rm -rf "$BENCH_TMP/l-gz" "$BENCH_TMP/l-zst" "$BENCH_TMP/crane.tar"
	time_cmd crane "$CRANE" append -f "$BENCH_TMP/tree.tar" -t bench.local/tree:latest -o "$BENCH_TMP/crane.tar"
	time_cmd gzip "$LADING" build "$tree" -t "oci:$BENCH_TMP/l-gz:t" --compression gzip
	time_cmd zstd "$LADING" build "$tree" -t "oci:$BENCH_TMP/l-zst:t" --compression zstd
done
rss=$(rm -rf "$BENCH_TMP/l-gz" && peak_rss_mb "$LADING" build "$tree" -t "oci:$BENCH_TMP/l-gz:t" --compression gzip)
sizes() { "$LADING" inspect "oci:$1:t" --format '{{.Size}}'; }
printf "%-34s %8s s\n" "crane append (from a ready tar)" "$(median crane)" "lading build --compression gzip" "$(median gzip)" "lading build --compression zstd" "$(median zstd)"
echo "layer bytes: crane $(stat -c %s "$BENCH_TMP/crane.tar") (tarball), lading gzip $(sizes "$BENCH_TMP/l-gz"), zstd $(sizes "$BENCH_TMP/l-zst")"
echo "gzip/crane: $(ratio gzip crane)   zstd/crane: $(ratio zstd crane)   lading gzip peak RSS: ${rss} MB"
