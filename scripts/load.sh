#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and two caveat server replicas on it (as
# scripts/replicas.sh does), drives them with caveat-load — the issue's mix
# from 64 clients for $DURATION — prints the summary, then checks the run's
# record: every mint and revocation that returned success holds on both.
#
#   scripts/load.sh                        # 60 s, 64 clients
#   DURATION=10s CLIENTS=16 scripts/load.sh
#   scripts/load.sh --json                 # further arguments go to caveat-load
#   KEEP=1 scripts/load.sh                 # leave the replicas and PostgreSQL running
#
# Environment: DURATION (60s), CLIENTS (64), LOG_LEVEL of the servers (info,
# their default: a JSON line per request), PORTS ("18191 18192").
#
# Needs PostgreSQL's binaries (apt-get install postgresql) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${DURATION:-60s}"
clients="${CLIENTS:-64}"
log_level="${LOG_LEVEL:-info}"
read -r -a ports <<<"${PORTS:-18191 18192}"
[ ${#ports[@]} -ge 1 ] || {
	echo "load: PORTS is empty" >&2
	exit 1
}

work=$(mktemp -d /tmp/caveat-load.XXXXXX)
chmod 755 "$work" # PostgreSQL runs as another user when this runs as root
pids=()
cleanup() {
	if [ -z "${KEEP:-}" ]; then
		for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
		for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
		scripts/start-postgres.sh --stop "$work/pg" >/dev/null 2>&1 || true
		rm -rf "$work"
	else
		echo "load: left running (pids ${pids[*]}), data and logs in $work" >&2
	fi
}
trap cleanup EXIT
say() { echo "load: $*" >&2; }
fail() {
	echo "load: FAILED: $*" >&2
	exit 1
}

go build -o "$work/caveat" ./cmd/caveat
go build -o "$work/caveat-load" ./cmd/caveat-load
db=$(scripts/start-postgres.sh "$work/pg")
say "PostgreSQL at $db"

mkdir -m 700 "$work/keys"
head -c 32 /dev/urandom | base64 >"$work/keys/master.key"
chmod 600 "$work/keys/master.key"

public="http://127.0.0.1:${ports[0]}"
urls=()
for port in "${ports[@]}"; do
	"$work/caveat" server --listen "127.0.0.1:$port" --data "$work/data-$port" --db "$db" \
		--master-key-file "$work/keys/master.key" --public-url "$public" --log-level "$log_level" \
		2>"$work/server-$port.log" &
	pids+=($!)
	urls+=("http://127.0.0.1:$port")
done
for port in "${ports[@]}"; do
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
		sleep 0.2
	done
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "replica on $port did not start: $(tail -3 "$work/server-$port.log")"
done
say "replicas on ${ports[*]}; $(nproc) CPUs, shared by PostgreSQL, the replicas and caveat-load"

password=$(head -c 18 /dev/urandom | base64)
export CAVEAT_LOAD_PASSWORD="$password"
status=0
"$work/caveat-load" --setup --public-url "$public" --clients "$clients" --duration "$duration" \
	--record "$work/record.jsonl" "$@" "${urls[@]}" || status=$?
"$work/caveat-load" check --public-url "$public" --record "$work/record.jsonl" "${urls[@]}" >&2 ||
	fail "the check of the record found problems"
for port in "${ports[@]}"; do
	n=$(grep -c '"level":"ERROR"' "$work/server-$port.log" || true)
	[ "$n" = 0 ] || say "replica $port logged $n errors, the first: $(grep -m1 '"level":"ERROR"' "$work/server-$port.log")"
done
[ "$status" = 0 ] || fail "caveat-load exited with status $status"
say "ok"
