#!/usr/bin/env bash
# Starts two caveat server replicas on one local PostgreSQL and checks that
# they act as one: a token minted through one works on the other, and a
# token revoked through one is refused by the other within a second.
#
#   scripts/replicas.sh            # start, check, stop everything
#   KEEP=1 scripts/replicas.sh     # leave the replicas and PostgreSQL running
#
# Needs PostgreSQL's binaries (apt-get install postgresql) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/caveat-replicas.XXXXXX)
chmod 755 "$work" # PostgreSQL runs as another user when this runs as root
pids=()
cleanup() {
	if [ -z "${KEEP:-}" ]; then
		for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
		scripts/start-postgres.sh --stop "$work/pg" >/dev/null 2>&1 || true
		rm -rf "$work"
	else
		echo "replicas: left running (pids ${pids[*]}), data in $work" >&2
	fi
}
trap cleanup EXIT
say() { echo "replicas: $*" >&2; }
fail() {
	echo "replicas: FAILED: $*" >&2
	exit 1
}

go build -o "$work/caveat" ./cmd/caveat
db=$(scripts/start-postgres.sh "$work/pg")
say "PostgreSQL at $db"

# One master key for both: replicas must share it.
mkdir -m 700 "$work/keys"
head -c 32 /dev/urandom | base64 >"$work/keys/master.key"
chmod 600 "$work/keys/master.key"

# Both replicas serve the same public URL, which clients (and the token
# locations) use; behind a load balancer it would be the balancer's.
public=http://127.0.0.1:18181
for port in 18181 18182; do
	"$work/caveat" server --listen "127.0.0.1:$port" --data "$work/data-$port" --db "$db" \
		--master-key-file "$work/keys/master.key" --public-url "$public" \
		2>"$work/server-$port.log" &
	pids+=($!)
done
for port in 18181 18182; do
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
		sleep 0.2
	done
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "replica on $port did not start: $(tail -3 "$work/server-$port.log")"
done
say "replicas on 18181 and 18182"

export CAVEAT_CONFIG_DIR="$work/cli"
caveat() { "$work/caveat" "$@"; }
echo 'correct horse battery' | caveat auth signup --api "$public" --email ops@example.com --password-stdin --org acme
orgid=$(caveat orgs list --json | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -1)

authorize() { # PORT TOKEN → HTTP status
	curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$1/v1/tokens/authorize" \
		-H 'Content-Type: application/json' \
		--data "{\"header\": \"$2\", \"access\": {\"orgid\": $orgid, \"action\": \"r\"}}"
}

# Minted through the first replica, checked by the second.
token=$(caveat tokens create readonly --api "http://127.0.0.1:18181" --name replica-check)
[ "$(authorize 18182 "$token")" = 200 ] || fail "the second replica refuses a token minted by the first"
say "minted through 18181, accepted by 18182"

# Revoked through the second replica, refused by the first within a second.
id=$(caveat tokens list --api "http://127.0.0.1:18182" --json | sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p' | head -1)
[ "$(authorize 18181 "$token")" = 200 ] || fail "the first replica refuses the token before revocation"
caveat tokens revoke --api "http://127.0.0.1:18182" "$id"
start=$(date +%s%N)
while [ "$(authorize 18181 "$token")" != 401 ]; do
	[ $(($(date +%s%N) - start)) -lt 1000000000 ] || fail "revoked through 18182, still accepted by 18181 after a second"
	sleep 0.01
done
say "revoked through 18182, refused by 18181 after $((($(date +%s%N) - start) / 1000000)) ms"
say "ok"
