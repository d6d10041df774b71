#!/usr/bin/env bash
# Build one Containerfile (FROM a busybox image, COPY the Go standard
# library's sources, two RUNs, config instructions) with buildah (vfs
# storage, chroot isolation, --layers) and with lading build --file; first with
# empty caches, then again unchanged, then after one source file changed.
# Medians of RUNS runs each, and the ratios.
# Needs root, runc, buildah and busybox-static. Usage: bench/containerfile.sh
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "bench/containerfile.sh needs root"; exit 1; }
for t in runc buildah busybox; do command -v $t >/dev/null || { echo "$t is required"; exit 1; }; done
build_lading

base="$BENCH_TMP/base"
mkdir -p "$base/bin" "$base/etc"
cp "$(command -v busybox)" "$base/bin/busybox"
for a in sh find wc cat echo mkdir ls; do ln -s busybox "$base/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$base/etc/passwd"
layout="/tmp/lading-bench-layout-$$-$RANDOM"; [ -n "${KEEP:-}" ] || trap 'rm -rf "$layout" "$BENCH_TMP"' EXIT
"$LADING" build "$base" -t "oci:$layout:busybox" --env PATH=/bin >/dev/null

ctx="$BENCH_TMP/context"
mkdir -p "$ctx"
cp -a "$(go env GOROOT)/src" "$ctx/src"
cat >"$ctx/Containerfile" <<EOF2
FROM oci:$layout:busybox
ENV APP=/app
WORKDIR /app
COPY src/ /app/src/
RUN find /app/src -name '*.go' | wc -l > /app/count
RUN mkdir -p /out && cat /app/count > /out/result
LABEL bench=containerfile
CMD ["cat", "/out/result"]
EOF2
du -sh "$ctx/src" | awk '{ print "context: " $1 }'

export XDG_CACHE_HOME="$BENCH_TMP/cache"
B() { buildah --storage-driver vfs --root "$BENCH_TMP/buildah" --runroot "$BENCH_TMP/buildah-run" "$@"; }
export -f B; export BENCH_TMP ctx
WARM="$ctx $layout"
echo "== timing ($RUNS runs each)"
for i in $(seq "$RUNS"); do
	rm -rf "$BENCH_TMP/buildah" "$BENCH_TMP/buildah-run" "$XDG_CACHE_HOME" "$BENCH_TMP/out"
	git -C "$ctx" status >/dev/null 2>&1 || true
	echo "// v$i" >>"$ctx/src/fmt/doc.go"
	time_cmd buildah_cold bash -c 'B build --layers --isolation chroot -f "$ctx/Containerfile" -t localhost/bench "$ctx"'
	time_cmd lading_cold "$LADING" build -q --file "$ctx/Containerfile" "$ctx" -t "oci:$BENCH_TMP/out:bench"
	time_cmd buildah_cached bash -c 'B build --layers --isolation chroot -f "$ctx/Containerfile" -t localhost/bench "$ctx"'
	time_cmd lading_cached "$LADING" build -q --file "$ctx/Containerfile" "$ctx" -t "oci:$BENCH_TMP/out:bench"
	echo "// changed $i" >>"$ctx/src/fmt/doc.go"
	time_cmd buildah_changed bash -c 'B build --layers --isolation chroot -f "$ctx/Containerfile" -t localhost/bench "$ctx"'
	time_cmd lading_changed "$LADING" build -q --file "$ctx/Containerfile" "$ctx" -t "oci:$BENCH_TMP/out:bench"
done
printf "%-40s %8s s\n" \
	"buildah build, empty cache" "$(median buildah_cold)" \
	"lading build --file, empty cache" "$(median lading_cold)" \
	"buildah build, unchanged" "$(median buildah_cached)" \
	"lading build --file, unchanged" "$(median lading_cached)" \
	"buildah build, one file changed" "$(median buildah_changed)" \
	"lading build --file, one file changed" "$(median lading_changed)"
echo "lading/buildah: empty cache $(ratio lading_cold buildah_cold), unchanged $(ratio lading_cached buildah_cached), one file changed $(ratio lading_changed buildah_changed)"
