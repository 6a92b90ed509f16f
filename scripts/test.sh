#!/usr/bin/env bash
# The whole test suite: vet, the race-enabled tests, then a short run of
# every fuzz target. CI runs exactly this (see .ci/run).
#
#   FUZZTIME=5m scripts/test.sh   # longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 ./...

echo "== fuzz smoke runs (${fuzztime} each)"
# Every func FuzzXxx in a _test.go file, with its package directory.
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "-- $dir $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$dir"
	done
done
echo "== all tests passed"
