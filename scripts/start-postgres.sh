#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests, listening on 127.0.0.1
# only, with its data, socket and log under DIR, and prints its URL on
# stdout (nothing else goes to stdout).
#
#   url=$(scripts/start-postgres.sh /tmp/caveat-pg)
#   CAVEAT_TEST_POSTGRES_URL=$url go test ./store/...
#   scripts/start-postgres.sh --stop /tmp/caveat-pg
#
# Options: -p PORT (default: the first free port from 54329). Environment:
# PG_BINDIR, the directory holding initdb and pg_ctl (default: the newest
# /usr/lib/postgresql/*/bin, else wherever initdb is on PATH).
#
# The cluster trusts every local connection and runs with fsync off: it is
# for tests, never for data. Run again on the same DIR, the script starts
# the existing cluster (or finds it running) and prints its URL.
#
# PostgreSQL refuses to run as root. Run as root, the script runs the server
# as the user "postgres" (which Debian's package creates) or, if there is
# none, as a system user "caveat-pg" that it creates, and hands DIR to that
# user; every directory above DIR must then be searchable by it (/tmp is,
# /root usually is not).
set -euo pipefail

say() { echo "start-postgres: $*" >&2; }
die() {
	echo "start-postgres: error: $*" >&2
	exit 1
}

usage() { die "usage: $0 [-p PORT] DIR | $0 --stop DIR"; }

port=""
stop=false
while [ $# -gt 0 ]; do
	case "$1" in
	-p)
		[ $# -ge 2 ] || usage
		port="$2"
		shift 2
		;;
	--stop)
		stop=true
		shift
		;;
	-h | --help) usage ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
dir="$1"
case "$port" in
"" | [0-9] | [0-9][0-9] | [0-9][0-9][0-9] | [0-9][0-9][0-9][0-9] | [0-9][0-9][0-9][0-9][0-9]) ;;
*) die "port $port is not a number" ;;
esac

# Binaries.
bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
	bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	if command -v initdb >/dev/null 2>&1; then
		bindir=$(dirname "$(command -v initdb)")
	else
		die "no PostgreSQL binaries found; install them (Debian: apt-get install -y postgresql) or set PG_BINDIR"
	fi
fi
for b in initdb pg_ctl pg_isready; do
	[ -x "$bindir/$b" ] || die "$bindir/$b is missing"
done

# DIR is new, empty, or a cluster this script made: never take over (or
# chown) a directory holding anything else.
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/data/PG_VERSION" ]; then
	die "$dir is not empty and holds no cluster made by this script; choose a new directory"
fi

# Who runs the server.
run=()
if [ "$(id -u)" -eq 0 ]; then
	user=postgres
	if ! id "$user" >/dev/null 2>&1; then
		user=caveat-pg
		if ! id "$user" >/dev/null 2>&1; then
			say "creating system user $user to run PostgreSQL (it refuses to run as root)"
			useradd --system --no-create-home --shell /usr/sbin/nologin "$user" ||
				die "could not create user $user"
		fi
	fi
	if command -v runuser >/dev/null 2>&1; then
		run=(runuser -u "$user" --)
	else
		run=(su -s /bin/sh "$user" -c '"$0" "$@"')
	fi
	mkdir -p "$dir"
	chown "$user" "$dir"
	"${run[@]}" test -w "$dir" -a -x "$dir" ||
		die "user $user cannot write $dir: choose a directory whose parents it can search (e.g. under /tmp)"
else
	mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd)
data="$dir/data"
sock="$dir/run"
log="$dir/postgres.log"

as_user() { "${run[@]+"${run[@]}"}" "$@"; }

if $stop; then
	[ -f "$data/PG_VERSION" ] || die "no cluster in $dir"
	as_user "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
	exit 0
fi

url_for() { echo "postgres://postgres@127.0.0.1:$1/postgres?sslmode=disable"; }

# A cluster already running in DIR: report it.
if [ -f "$data/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	running_port=$(sed -n 4p "$data/postmaster.pid")
	say "already running in $dir"
	url_for "$running_port"
	exit 0
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# next_free_port prints the first port from $1 on that nothing listens on.
next_free_port() {
	local p=$1
	while ! port_free "$p"; do
		p=$((p + 1))
		[ "$p" -lt 54429 ] || die "no free port in 54329-54428; pass -p PORT"
	done
	echo "$p"
}
chosen=""
if [ -z "$port" ]; then
	port=$(next_free_port 54329)
	chosen=yes
elif ! port_free "$port"; then
	die "port $port is in use"
fi

if [ ! -f "$data/PG_VERSION" ]; then
	say "initialising a cluster in $data"
	as_user mkdir -p "$data" "$sock"
	as_user "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
		die "initdb failed; see $dir/initdb.log"
fi
as_user mkdir -p "$sock"

# A port found free can be taken before PostgreSQL binds it (it lies in
# the ephemeral range, where busy tests' own connections land): a port this
# script chose is retried with the next free one, a few times.
for attempt in 1 2 3 4 5; do
	say "starting PostgreSQL on 127.0.0.1:$port (log: $log)"
	opts="-c listen_addresses=127.0.0.1 -p $port -k '$sock' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
	if as_user "$bindir/pg_ctl" -D "$data" -l "$log" -o "$opts" -w -t 60 start >&2; then
		break
	fi
	if [ -z "$chosen" ] || [ "$attempt" = 5 ] || ! grep -q "could not bind\|Address already in use" "$log"; then
		die "pg_ctl start failed; see $log"
	fi
	port=$(next_free_port $((port + 1)))
done
as_user "$bindir/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >&2 ||
	die "PostgreSQL does not answer on 127.0.0.1:$port; see $log"
url_for "$port"
