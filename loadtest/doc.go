// Package loadtest drives a running caveat deployment, one replica or
// several, with a mix of requests from many concurrent clients, measures
// it, and checks afterwards that nothing the deployment said it did was
// lost. cmd/caveat-load is its command line; this package's tests start
// replicas on PostgreSQL as processes, load them, kill them and restart
// PostgreSQL under them.
//
// # Setup
//
// [Prepare] logs in (signing up first when asked, on a fresh server),
// finds or creates the organization's two apps ("load-a" and "load-b")
// and the machines of load-a, and mints the tokens of the mix: a readonly
// token, a deploy token of load-a, that token attenuated offline to
// Machines{"": rC} (it starts and stops load-a's machines and may do
// nothing else to them), an org token, and a deploy token of load-b that
// it revokes at once.
//
// # The mix
//
// Each client picks its next request at random by the weights of a [Mix]
// (default 70 authorize, 20 authenticate, 8 machines, 2 tokens):
//
//   - authorize: POST /v1/tokens/authorize with one of a fixed set of
//     token and access pairs, about a third of them meant to be refused
//     (the wrong action, app or organization, a destroy with the rC token,
//     the revoked token); or, one time in eight when the client has minted
//     tokens, with one of them: one it has not revoked, meant to be
//     allowed, or one it revoked more than a second ago, meant to be
//     refused as revoked by whichever replica answers, although that
//     replica may have verified and cached it before the revocation;
//   - authenticate: POST /v1/tokens/authenticate with one of the tokens,
//     the revoked one meant to be refused;
//   - machines: start or stop one of load-a's machines with the rC token.
//     A 412 (the machine is starting, stopping, or already in the state)
//     is an expected conflict;
//   - tokens: with the admin session, mint a deploy token of load-a
//     (POST /v1/tokens) or revoke one this client minted before
//     (DELETE /v1/tokens/{id}), each half of the time while it has one.
//
// # Outcomes
//
// Every request ends in one [Outcome]: ok, an intended denial (the status,
// and for a revoked token the word "revoked", that the case expects), an
// expected conflict, an unintended denial, an unintended allow (a token
// that should have been refused was not: the worst), another 4xx, a 5xx or
// a network error. The last five are errors.
//
// # Retries
//
// Requests go to the base URLs in turn. A request that fails with a
// network error or a 500, 502, 503 or 504 is sent again to the next URL,
// up to Config.Retries times, pausing only after every URL has failed
// once; its latency covers every attempt. So a client loses nothing when
// a replica dies, as long as another answers. A mint that is retried may
// leave a token minted by the first attempt whose answer was lost: only
// mints that answered success count, and those are what the record holds.
//
// # The record
//
// With a record file, every mint and revocation that returned success is
// written as a JSON line (a [Record]), and so is every revocation whose
// outcome is unknown because every attempt failed. [Check] reads it back
// and verifies, through every given replica, that each minted token is
// listed and verifies for its access unless it was revoked, and that each
// revoked one is listed as revoked and refused. The file holds tokens: it
// is created with mode 0600.
package loadtest
