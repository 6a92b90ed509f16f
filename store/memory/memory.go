// Package memory keeps the short-lived state of a caveat server that runs
// alone — pending browser logins and login throttles — in the process's
// memory, under the contracts of [store.WebLogins] and [store.Throttles].
// Replicas sharing a database use that database's implementations
// instead (store/postgres), so that any replica answers any poll and a
// guess costs the same bucket wherever it lands.
//
// Both are bounded: the logins by the max each StartWebLogin passes
// (refusing newcomers, never dropping a live login), the buckets by
// NewThrottles' max keys per limiter.
package memory
