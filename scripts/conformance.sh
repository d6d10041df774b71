#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against `lading serve`
# with every API and data option on, and fails unless every test passes.
# The suite is installed with `go install` (pinned) into a cache under the
# system's temporary directory; the server listens on a free loopback port
# with a temporary root (in sparse mode, for the sparse-manifest tests), and
# is stopped at the end. Needs only Go.
# Usage: scripts/conformance.sh   (KEEP=1 keeps the results directory)
set -euo pipefail
cd "$(dirname "$0")/.."

CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
cache="${TMPDIR:-/tmp}/lading-conformance-$CONFORMANCE_VERSION"
if [ ! -x "$cache/conformance" ]; then
	mkdir -p "$cache"
	GOBIN="$cache" GOFLAGS=-buildvcs=false go install \
		"github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lading-conformance.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	[ -n "${KEEP:-}" ] && echo "results kept in $work" || rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/lading" ./cmd/lading
# The server picks a free port and prints it on its first line.
mkfifo "$work/out"
"$work/lading" serve --addr 127.0.0.1:0 --root "$work/root" --log-level warn --sparse >"$work/out" 2>"$work/server.log" &
pid=$!
exec 3<"$work/out"
read -r -t 30 line <&3 || { echo "lading serve did not start:"; cat "$work/server.log"; exit 1; }
addr=${line##*://}
cat <&3 >/dev/null &

export OCI_REGISTRY="$addr" OCI_TLS=disabled OCI_VERSION=1.1
export OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2
export OCI_RESULTS_DIR="$work/results" OCI_LOG=warn OCI_HIDE_SKIPPED_WORKFLOWS=0
export OCI_API_PULL=true OCI_API_PUSH=true OCI_API_BLOBS_ATOMIC=true OCI_API_BLOBS_DELETE=true
export OCI_API_BLOBS_DIGEST_HEADER=true OCI_API_BLOBS_MOUNT_ANONYMOUS=true OCI_API_BLOBS_UPLOAD_CANCEL=true
export OCI_API_MANIFESTS_ATOMIC=true OCI_API_MANIFESTS_DELETE=true OCI_API_MANIFESTS_DIGEST_HEADER=true
export OCI_API_MANIFESTS_TAG_PARAM=true OCI_API_TAGS_ATOMIC=true OCI_API_TAGS_DELETE=true OCI_API_TAGS_LIST=true
export OCI_API_REFERRER=true
export OCI_DATA_IMAGE=true OCI_DATA_INDEX=true OCI_DATA_INDEX_LIST=true OCI_DATA_SPARSE=true
export OCI_DATA_ARTIFACT=true OCI_DATA_SUBJECT=true OCI_DATA_SUBJECT_MISSING=true OCI_DATA_ARTIFACT_LIST=true
export OCI_DATA_SUBJECT_LIST=true OCI_DATA_DATA_FIELD=true OCI_DATA_NONDISTRIBUTABLE=true
export OCI_DATA_CUSTOM_FIELDS=true OCI_DATA_NO_LAYERS=true OCI_DATA_EMPTY_BLOB=true OCI_DATA_SHA512=true
set +e
(cd "$work" && "$cache/conformance") | tee "$work/conformance.out"
rc=${PIPESTATUS[0]}
set -e
passed=$(awk -F: '/^ *Pass\.+:/ { gsub(/ /, "", $2); print $2 }' "$work/conformance.out")
failed=$(awk -F: '/^ *FAIL\.+:/ { gsub(/ /, "", $2); print $2 }' "$work/conformance.out")
echo "conformance: ${passed:-0} passed, ${failed:-?} failed"
exit "$rc"
