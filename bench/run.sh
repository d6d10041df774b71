#!/usr/bin/env bash
# Start a container from an image of about 250 MB (busybox and the Go
# toolchain) and compare, medians of RUNS runs each:
#   runc run            on a bundle unpacked beforehand (the floor: the runtime alone)
#   umoci+runc          umoci unpack into a fresh bundle, then runc run (no cache)
#   lading cold         lading run with an empty cache (unpack, then run)
#   lading overlay      lading run again: the cached tree under an overlay
#   lading copy         lading run --rootfs copy: a copy of the cached tree
# Needs root, runc, umoci and busybox-static. Usage: bench/run.sh (RUNS=5)
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "bench/run.sh needs root (runc)"; exit 1; }
for t in runc umoci busybox; do command -v $t >/dev/null || { echo "$t is required"; exit 1; }; done
build_lading

root="$BENCH_TMP/root"
mkdir -p "$root/bin" "$root/usr/local"
cp "$(command -v busybox)" "$root/bin/busybox"
for a in sh true echo; do ln -s busybox "$root/bin/$a"; done
cp -a "$(go env GOROOT)" "$root/usr/local/go"
img="$BENCH_TMP/layout"
echo "== building the image (not timed)"
"$LADING" build "$root" -t "oci:$img:big" --cmd '["/bin/true"]' >/dev/null
"$LADING" inspect "oci:$img:big" | sed -n '/^Size/p'
# umoci's config.json asks for a terminal; there is none here.
umoci_bundle() { umoci unpack --image "$img:big" "$1" >/dev/null && sed -i 's/"terminal": true/"terminal": false/' "$1/config.json"; }
export -f umoci_bundle; export img
umoci_bundle "$BENCH_TMP/floor"

export XDG_CACHE_HOME="$BENCH_TMP/cache"
WARM="$img"
n=0
echo "== timing ($RUNS runs each; page cache dropped before each)"
for i in $(seq "$RUNS"); do
	n=$((n + 1))
	time_cmd floor runc run --bundle "$BENCH_TMP/floor" "bench-floor-$n"
	time_cmd umoci bash -c "umoci_bundle '$BENCH_TMP/u$n' && runc run --bundle '$BENCH_TMP/u$n' 'bench-umoci-$n'"
	rm -rf "$XDG_CACHE_HOME/lading/rootfs"
	time_cmd cold "$LADING" run --rm "oci:$img:big"
	time_cmd overlay "$LADING" run --rm --rootfs overlay "oci:$img:big"
	time_cmd copy "$LADING" run --rm --rootfs copy "oci:$img:big"
	rm -rf "$BENCH_TMP/u$n"
done
printf "%-36s %8s s\n" \
	"runc run (bundle ready)" "$(median floor)" \
	"umoci unpack + runc run" "$(median umoci)" \
	"lading run, empty cache" "$(median cold)" \
	"lading run, cached, overlay" "$(median overlay)" \
	"lading run, cached, copy" "$(median copy)"
echo "lading cold/umoci+runc: $(ratio cold umoci)   lading overlay/runc floor: $(ratio overlay floor)   lading copy/overlay: $(ratio copy overlay)"
