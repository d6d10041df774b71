#!/usr/bin/env bash
# Installs, with go install at pinned versions, the peers that are not Debian
# packages into the caches the tests and scripts look in (under the system's
# temporary directory): crane, regctl and oras (registry/server's interop
# tests), distribution v3 (registry/client's tests) and the distribution-spec
# conformance suite (scripts/conformance.sh). The installs run in parallel;
# one that fails (offline) is reported, and the tests that need it skip.
set -uo pipefail
tmp="${TMPDIR:-/tmp}"
install() { # install DIR MODULE@VERSION
	local dir=$1 mod=$2
	local bin
	bin="$dir/$(basename "${mod%@*}")"
	[ -x "$bin" ] && return 0
	mkdir -p "$dir"
	if ! GOBIN="$dir" GOFLAGS="-buildvcs=false -mod=mod" go install "$mod" >"$dir.log" 2>&1; then
		echo "peers: go install $mod failed (see $dir.log)"
		return 1
	fi
}
peer() { # peer MODULE@VERSION: the cache name the tests use
	install "$tmp/lading-peers/$(echo "$1" | tr '/@' '__')" "$1"
}
peer github.com/google/go-containerregistry/cmd/crane@v0.21.7 &
peer github.com/regclient/regclient/cmd/regctl@v0.11.1 &
peer oras.land/oras/cmd/oras@v1.3.6 &
install "$tmp/lading-peers/distribution-v3.1.2" github.com/distribution/distribution/v3/cmd/registry@v3.1.2 &
install "$tmp/lading-conformance-v0.0.0-20260831232431-97274622c111" \
	github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 &
status=0
for job in $(jobs -p); do
	wait "$job" || status=1
done
exit $status
