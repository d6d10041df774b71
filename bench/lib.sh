# Shared helpers for the comparison benchmarks. Source it from a bench script.
# Peers that are not Debian packages are installed with `go install` into a
# temporary GOBIN at pinned versions.
set -euo pipefail

CRANE_VERSION=v0.21.7
REGCTL_VERSION=v0.11.1
RUNS=${RUNS:-3}

BENCH_TMP=${BENCH_TMP:-$(mktemp -d /tmp/lading-bench.XXXXXX)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$BENCH_TMP"' EXIT
GOBIN_DIR="$BENCH_TMP/bin"
mkdir -p "$GOBIN_DIR"

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

build_lading() {
	(cd "$(repo_root)" && go build -o "$GOBIN_DIR/lading" ./cmd/lading)
	LADING="$GOBIN_DIR/lading"
}

install_crane() {
	GOBIN="$GOBIN_DIR" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" 2>/dev/null
	CRANE="$GOBIN_DIR/crane"
}

# now_ns prints a monotonic-ish timestamp in nanoseconds.
now_ns() { date +%s%N; }

# settle puts the machine in the same state before every timed command:
# dirty data flushed and, when the page cache can be dropped (root), the
# cache dropped and the inputs ($WARM: files or directories) read back in.
# On the VMs these numbers come from, copying into page-cache pages that were
# never used before costs about twice as much kernel time as copying into
# recycled ones, so without this a command's time depends on how much memory
# the commands before it happened to touch.
settle() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 1 >/proc/sys/vm/drop_caches
		if [ -n "${WARM:-}" ]; then
			find $WARM -type f -exec cat {} + >/dev/null
		fi
	fi
}

# time_cmd NAME CMD...: settles, runs CMD once, appends elapsed seconds to
# $BENCH_TMP/NAME.times.
time_cmd() {
	local name=$1; shift
	local t0 t1
	settle
	t0=$(now_ns)
	"$@" >/dev/null 2>"$BENCH_TMP/$name.err" || { echo "$name failed:"; cat "$BENCH_TMP/$name.err"; exit 1; }
	t1=$(now_ns)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }' >>"$BENCH_TMP/$name.times"
}

# median NAME: the median of the recorded times.
median() { sort -n "$BENCH_TMP/$1.times" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ratio A B: A's median divided by B's.
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { printf "%.2f", a / b }'; }

# peak_rss_mb CMD...: peak resident memory of CMD in MB (GNU time if present).
peak_rss_mb() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'
	else
		echo "n/a"
	fi
}

# bench_image DIR: builds the 3-layer benchmark image DIR:bench with umoci
# (not timed): the Go toolchain; /etc and the programs of /usr/bin; a layer
# deleting two directories and overwriting a file.
bench_image() {
	local img=$1
	echo "== building the image with umoci (not timed)"
	umoci init --layout "$img" >/dev/null
	umoci new --image "$img:bench" >/dev/null
	_stack() { # _stack N CMD: unpack, change the rootfs with CMD, repack
		local w="$BENCH_TMP/work$1"; shift
		umoci unpack --rootless --image "$img:bench" "$w" >/dev/null
		(cd "$w/rootfs" && eval "$*")
		umoci repack --image "$img:bench" "$w" >/dev/null
		rm -rf "$w"
	}
	_stack 1 "mkdir -p usr/local && cp -a /usr/local/go usr/local/go"
	_stack 2 "cp -a /etc etc && mkdir -p usr && cp -a /usr/bin usr/bin"
	_stack 3 "rm -rf usr/local/go/api usr/local/go/doc && echo changed > etc/hostname"
}
