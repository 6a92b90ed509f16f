//go:build race

package loadtest_test

// raceEnabled is set when the tests run with -race: the binaries they
// start are then built with -race too, so that a data race in a server
// under load shows in its log, which the tests read.
const raceEnabled = true
