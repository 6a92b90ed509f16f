// Package securitytest holds caveat's security properties as randomized
// tests (issue 5). It has no code of its own: everything is in its tests,
// which drive the real pieces (the token library, authority.Service over a
// SQLite store, and real servers from package server on 127.0.0.1:0).
//
// # Properties
//
//   - TestCrossOrganization: a token of organization A (every mint
//     profile, and A's users' sessions, randomly attenuated with caveats
//     from the registry) never authorizes an access that names
//     organization B, through a real server.
//   - TestAttenuationNeverWidens: appending caveats to a token (with
//     Macaroon.Add, with "caveat tokens attenuate", or by computing the
//     HMAC chain by hand, which lets anyone append any bytes) never lets
//     through an access that was refused before, and the verified caveat
//     set after is the set before plus the new caveats, through the
//     library and through authority.Service.
//   - TestDischargesDoNotCross: a login discharge satisfies only the
//     session token it was fetched for (and that token's attenuations made
//     after the token it was bound to), never another session's, whoever's
//     session it is.
//   - TestExpiredDischargeRefused: a bundle whose login discharge has
//     expired is refused by authenticate and authorize, alone or attached
//     to an attenuation of its token, at random times after its expiry.
//   - TestLoginThrottled: login attempts follow the documented token
//     buckets (per account, and per client address across accounts): over
//     the limit every attempt, with the right password too, is a 429 with
//     an honest Retry-After; spoofed X-Forwarded-For headers and variants
//     of the email change nothing.
//   - TestConsoleFormsRefuseCrossSiteAndMissingCSRF: every state-changing
//     form of the web console (console.Forms) is refused, changing nothing
//     in the store, without the session's CSRF token, with another
//     session's, and when Origin or Sec-Fetch-Site says another site or
//     origin sent it; the same form from the console's page does its work.
//     The login form is refused alike without its own token or cookie.
//   - TestBranchRevocationTree: for a random tree of attenuations of a
//     named token, revoking a random node (by itself, or by the token's
//     creator presenting it) refuses exactly that node's subtree, on both
//     of two replicas sharing one database (SQLite, and PostgreSQL when
//     CAVEAT_TEST_POSTGRES_URL is set): at once on the replica that
//     revoked, within a second on the other, and never an ancestor or a
//     sibling on either.
//   - TestDatabaseDumpHoldsNoKey: after signups, logins, key rotations,
//     token creation, a retirement, a revocation and a logout, the SQLite
//     files (and, with CAVEAT_TEST_POSTGRES_URL set, every table of a
//     PostgreSQL database) contain no root key, no key derived from the
//     master key, no session secret, no password, no token and no
//     discharge, in any of the usual encodings.
//
// # Seeds and iterations
//
// Every random choice comes from a math/rand/v2 source seeded from
// -security.seed or CAVEAT_SECURITY_SEED (default 1) and the test's name,
// so that a run repeats the same cases (keys, nonces and tickets still come
// from crypto/rand). A failing test prints its seed and the command that
// repeats it.
//
// By default each property runs a short form that takes seconds under
// -race. CAVEAT_SECURITY_ITERATIONS=N (or -security.iterations N) runs N
// cases of every property instead (what a case is, and the short form's
// count, is on each test; the dump test, whose case is a whole server,
// runs one case per 50):
//
//	CAVEAT_SECURITY_ITERATIONS=2000 go test -race -count=1 -timeout 1h ./securitytest
//	CAVEAT_SECURITY_SEED=7 go test -count=1 -run TestCrossOrganization ./securitytest
//
// With CAVEAT_TEST_POSTGRES_URL set, the dump test also runs on
// PostgreSQL (a fresh database per case, see package pgtest).
package securitytest
