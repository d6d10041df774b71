#!/usr/bin/env bash
# Registry serving benchmark: `lading serve`, distribution v3 and nginx
# (sendfile on, serving the same files) under wrk (2 threads x 32
# connections on loopback) pulling a 1 MiB blob and a ~1 KB manifest; then
# concurrent pushes of distinct images to lading and distribution, first by
# bench/pushload (8 clients in one light Go process, the docker/crane request
# sequence, content generated before the clock starts: the server's work is
# what is timed), then by 8 crane processes (what users run; on 2 cores the
# clients take much of the CPU). Prints throughput, p99 latency and lading's
# ratios.
# Usage: bench/serve.sh   (DURATION=10s per wrk run, PUSH_IMAGES=8 per client, PUSH_ONLY=1)
source "$(dirname "$0")/lib.sh"
for c in wrk nginx curl python3; do command -v $c >/dev/null || { echo "$c is required"; exit 1; }; done
DURATION=${DURATION:-10s}
PUSH_IMAGES=${PUSH_IMAGES:-8}
DISTRIBUTION_VERSION=v3.1.2
build_lading
GOBIN="$GOBIN_DIR" go install "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION" 2>/dev/null
DIST="$GOBIN_DIR/registry"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup_servers() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'cleanup_servers; [ -n "${KEEP:-}" ] || rm -rf "$BENCH_TMP"' EXIT
wait_up() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return; sleep 0.1; done; echo "server at $1 did not start"; cleanup_servers; exit 1; }

start_lading() {
	LPORT=$(free_port)
	local name=$1; shift
	"$LADING" serve --addr "127.0.0.1:$LPORT" --root "$BENCH_TMP/lading-root-$name" --log-level warn "$@" >"$BENCH_TMP/lading.log" 2>&1 &
	pids+=($!)
	wait_up "http://127.0.0.1:$LPORT/v2/"
}
start_dist() {
	DPORT=$(free_port)
	cat >"$BENCH_TMP/dist-$1.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $BENCH_TMP/dist-root-$1
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$DPORT
YML
	OTEL_TRACES_EXPORTER=none "$DIST" serve "$BENCH_TMP/dist-$1.yml" >"$BENCH_TMP/dist.log" 2>&1 &
	pids+=($!)
	wait_up "http://127.0.0.1:$DPORT/v2/"
}

# put_blob URL REPO FILE DIGEST: POST for a session, then PUT the whole blob
# (the upload every registry takes; distribution has no single POST).
put_blob() {
	local loc
	loc=$(curl -fsS -o /dev/null -D - -X POST "$1/v2/$2/blobs/uploads/" | awk -F': ' 'tolower($1)=="location" { print $2 }' | tr -d '\r')
	case $loc in http*) ;; *) loc="$1$loc" ;; esac
	case $loc in *\?*) loc="$loc&digest=$4" ;; *) loc="$loc?digest=$4" ;; esac
	curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$3" "$loc"
}

# push_image URL REPO TAG FILES...: blob uploads, then a manifest.
push_image() {
	local url=$1 repo=$2 tag=$3; shift 3
	local layers="" cfgd
	for f in "$@"; do
		local d="sha256:$(sha256sum "$f" | cut -d' ' -f1)" s=$(stat -c %s "$f")
		put_blob "$url" "$repo" "$f" "$d"
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}"
	done
	local cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"comment\":\"$repo:$tag\"}"
	cfgd="sha256:$(printf %s "$cfg" | sha256sum | cut -d' ' -f1)"
	local cfgf="$BENCH_TMP/cfg/${repo//\//_}-$tag"
	mkdir -p "$BENCH_TMP/cfg"
	printf %s "$cfg" >"$cfgf"
	put_blob "$url" "$repo" "$cfgf" "$cfgd"
	local man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cfgd\",\"size\":${#cfg}},\"layers\":[$layers]}"
	printf %s "$man" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @- "$url/v2/$repo/manifests/$tag"
}

# wrk_run NAME URL [HEADER]: records req/s, MB/s and p99 (ms) in $BENCH_TMP/NAME.wrk.
wrk_run() {
	local name=$1 url=$2 hdr=${3:-}
	local args=(-t2 -c32 -d"$DURATION" --latency)
	[ -n "$hdr" ] && args+=(-H "$hdr")
	wrk "${args[@]}" "$url" >"$BENCH_TMP/$name.out" 2>&1
	awk -v name="$name" '
		/Requests\/sec/ { rps = $2 }
		/Transfer\/sec/ { t = $2; if (t ~ /GB/) mb = t * 1024; else if (t ~ /MB/) mb = t + 0; else if (t ~ /KB/) mb = t / 1024; else mb = t / 1048576 }
		/^ +99%/ { p = $2; if (p ~ /us$/) ms = p / 1000; else if (p ~ /ms$/) ms = p + 0; else if (p ~ /s$/) ms = p * 1000 }
		/Non-2xx/ { bad = $NF }
		END { printf "%s %.0f %.1f %.2f %s\n", name, rps, mb, ms, bad + 0 }' "$BENCH_TMP/$name.out" >"$BENCH_TMP/$name.wrk"
}
field() { awk -v f="$2" '{ print $f }' "$BENCH_TMP/$1.wrk"; }

if [ -z "${PUSH_ONLY:-}" ]; then
echo "== content: a 1 MiB blob and a manifest, pushed to each registry; nginx serves the same files"
head -c 1048576 /dev/urandom >"$BENCH_TMP/blob1m"
start_lading pull
start_dist pull
push_image "http://127.0.0.1:$LPORT" bench/img v1 "$BENCH_TMP/blob1m"
push_image "http://127.0.0.1:$DPORT" bench/img v1 "$BENCH_TMP/blob1m"
BD="sha256:$(sha256sum "$BENCH_TMP/blob1m" | cut -d' ' -f1)"
MT='Accept: application/vnd.oci.image.manifest.v1+json'
MD=$(curl -fsS -o /dev/null -D - -H "$MT" "http://127.0.0.1:$LPORT/v2/bench/img/manifests/v1" | awk -F': ' 'tolower($1)=="docker-content-digest" { print $2 }' | tr -d '\r')
mkdir -p "$BENCH_TMP/www"
chmod 755 "$BENCH_TMP" # nginx's workers read as another user
cp "$BENCH_TMP/blob1m" "$BENCH_TMP/www/blob"
curl -fsS -H "$MT" "http://127.0.0.1:$LPORT/v2/bench/img/manifests/v1" >"$BENCH_TMP/www/manifest"
NPORT=$(free_port)
cat >"$BENCH_TMP/nginx.conf" <<NGX
worker_processes auto;
daemon off;
pid $BENCH_TMP/nginx.pid;
error_log $BENCH_TMP/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	default_type application/octet-stream;
	server { listen 127.0.0.1:$NPORT; root $BENCH_TMP/www; }
}
NGX
nginx -c "$BENCH_TMP/nginx.conf" -p "$BENCH_TMP" &
pids+=($!)
wait_up "http://127.0.0.1:$NPORT/blob"
echo "manifest $(stat -c %s "$BENCH_TMP/www/manifest") bytes, $MD"

echo "== wrk -t2 -c32 -d$DURATION (pull)"
for who in lading dist nginx; do
	case $who in
	lading) base="http://127.0.0.1:$LPORT/v2/bench/img" ;;
	dist) base="http://127.0.0.1:$DPORT/v2/bench/img" ;;
	esac
	if [ $who = nginx ]; then
		wrk_run "$who-blob" "http://127.0.0.1:$NPORT/blob"
		wrk_run "$who-manifest" "http://127.0.0.1:$NPORT/manifest"
	else
		wrk_run "$who-blob" "$base/blobs/$BD"
		wrk_run "$who-manifest" "$base/manifests/v1" "$MT"
		wrk_run "$who-manifest-digest" "$base/manifests/$MD" "$MT"
	fi
done
printf "%-26s %10s %10s %9s %7s\n" "" "req/s" "MB/s" "p99 ms" "non-2xx"
for n in lading-blob dist-blob nginx-blob lading-manifest dist-manifest nginx-manifest lading-manifest-digest dist-manifest-digest; do
	printf "%-26s %10s %10s %9s %7s\n" "$n" "$(field $n 2)" "$(field $n 3)" "$(field $n 4)" "$(field $n 5)"
done
ratio2() { awk -v a="$(field "$1" "$3")" -v b="$(field "$2" "$3")" 'BEGIN { printf "%.2f", a / b }'; }
echo "lading/distribution: blobs $(ratio2 lading-blob dist-blob 3)x MB/s, manifests $(ratio2 lading-manifest dist-manifest 2)x req/s (by digest $(ratio2 lading-manifest-digest dist-manifest-digest 2)x)"
echo "lading/nginx: blobs $(ratio2 lading-blob nginx-blob 3)x MB/s, manifests $(ratio2 lading-manifest nginx-manifest 2)x req/s"
echo "p99 lading/distribution: blobs $(ratio2 lading-blob dist-blob 4)x, manifests $(ratio2 lading-manifest dist-manifest 4)x"
cleanup_servers
fi

echo "== concurrent pushes: bench/pushload, 8 clients x $((PUSH_IMAGES * 2)) images of 3 x 1 MiB layers, distinct content"
(cd "$(repo_root)" && go build -o "$GOBIN_DIR/pushload" ./bench/pushload)
printf 'storage:\n  sync: false\n' >"$BENCH_TMP/nosync.yaml"
# pushload NAME PORT: runs the driver once; it times only the pushes (not the
# content generation) and its seconds are recorded under NAME.
pushload() {
	settle
	"$GOBIN_DIR/pushload" -url "http://127.0.0.1:$2" -clients 8 -images $((PUSH_IMAGES * 2)) >"$BENCH_TMP/$1.out" 2>&1 || { echo "$1 failed:"; cat "$BENCH_TMP/$1.out"; exit 1; }
	awk '{ print $1 }' "$BENCH_TMP/$1.out" >>"$BENCH_TMP/$1.times"
}
WARM=""
for i in $(seq "$RUNS"); do
	start_lading "load$i"
	pushload lading-load "$LPORT"
	cleanup_servers
	start_lading "load-nosync$i" --config "$BENCH_TMP/nosync.yaml"
	pushload lading-nosync-load "$LPORT"
	cleanup_servers
	start_dist "load$i"
	pushload dist-load "$DPORT"
	cleanup_servers
	rm -rf "$BENCH_TMP"/lading-root-load* "$BENCH_TMP"/dist-root-load*
done
imgs=$((16 * PUSH_IMAGES))
echo "lading: $(median lading-load) s (fsync), $(median lading-nosync-load) s (storage.sync: false), distribution: $(median dist-load) s (no fsync) for $imgs images ($((imgs * 3)) MiB)"
echo "push throughput lading/distribution (pushload): $(ratio dist-load lading-load)x with fsync, $(ratio dist-load lading-nosync-load)x without"

echo "== concurrent pushes: 8 clients (crane push) x $PUSH_IMAGES images of 3 x 1 MiB layers, distinct content"
install_crane
for c in $(seq 8); do for i in $(seq "$PUSH_IMAGES"); do
	src="$BENCH_TMP/src/c$c-i$i"
	mkdir -p "$src/l1" "$src/l2" "$src/l3"
	for l in 1 2 3; do head -c 1048576 /dev/urandom >"$src/l$l/data"; done
	tar -C "$src/l2" -cf "$src/l2.tar" . && tar -C "$src/l3" -cf "$src/l3.tar" .
	lay="$BENCH_TMP/push/c$c-i$i"
	"$LADING" build "$src/l1" -t "oci:$lay:img" >/dev/null
	"$LADING" append "oci:$lay:img" "$src/l2.tar" -t "oci:$lay:img" >/dev/null
	"$LADING" append "oci:$lay:img" "$src/l3.tar" -t "oci:$lay:img" >/dev/null
	"$LADING" gc "$lay" >/dev/null
done; done
rm -rf "$BENCH_TMP/src"
push_all() {
	local host=$1 c clients=() rc=0
	for c in $(seq 8); do
		( for i in $(seq "$PUSH_IMAGES"); do
			"$CRANE" push "$BENCH_TMP/push/c$c-i$i" "$host/push/c$c:v$i" >/dev/null 2>&1 || exit 1
		done ) &
		clients+=($!)
	done
	for c in "${clients[@]}"; do wait "$c" || rc=1; done
	return $rc
}
WARM="$BENCH_TMP/push"
for i in $(seq "$RUNS"); do
	start_lading "push$i"
	time_cmd lading-push push_all "127.0.0.1:$LPORT"
	cleanup_servers
	start_lading "push-nosync$i" --config "$BENCH_TMP/nosync.yaml"
	time_cmd lading-nosync-push push_all "127.0.0.1:$LPORT"
	cleanup_servers
	start_dist "push$i"
	time_cmd dist-push push_all "127.0.0.1:$DPORT"
	cleanup_servers
done
imgs=$((8 * PUSH_IMAGES))
echo "lading: $(median lading-push) s (fsync), $(median lading-nosync-push) s (storage.sync: false), distribution: $(median dist-push) s (no fsync) for $imgs images ($((imgs * 3)) MiB)"
echo "push throughput lading/distribution (crane): $(ratio dist-push lading-push)x with fsync, $(ratio dist-push lading-nosync-push)x without"
