// Package identity is the login service of a caveat server: signup,
// password login, sessions, and the discharger of the login third-party
// caveat that every session token carries (spec §7, §8). The server mounts
// its Handler under /aaa/v1/; its public URL + "/aaa/v1" is the login
// location, and permission tokens live at the public URL + "/v1".
//
// Every JSON body is read strictly (one object, no unknown fields, at most
// 64 KiB) and every error is answered with a 4xx status and
// {"error": "…"}; 500 "internal error" is kept for the server's own
// failures, which are logged. No log line holds a password, a session
// secret, a token, a ticket, a discharge or an email address.
//
// # Signup
//
//	POST /aaa/v1/users HTTP/1.1
//	Content-Type: application/json
//
//	{"email": "ada@example.com", "password": "correct horse", "organization": "acme"}
//
//	HTTP/1.1 201 Created
//
//	{"user": {"id": 1, "email": "ada@example.com"},
//	 "organization": {"id": 1, "slug": "acme", "role": "admin"}}
//
// The first user of a server always gets an organization, named by
// "organization" or, without it, after the email's local part (lowercased,
// other characters turned into "-": "Ada.Lovelace@…" gives
// "ada-lovelace"), and is its admin; the organization gets its first root
// key. Later users get an organization only when they name one. A given
// "organization" must be a slug: 1 to 63 of a-z, 0-9 and "-", not starting
// or ending with "-" (upper case is lowered). Passwords are at least 8
// characters and at most 1024 bytes. Answers: 400 for a bad email,
// password or slug, 403 {"error": "signup is closed on this server"} when
// Config.SignupOpen is false and the server has its first user (the first
// user can always sign up), 409 when the email (compared ignoring case)
// or the organization is taken.
//
// # Invitations
//
// A signup with "invitation" (the cvi1_… code an admin got from caveat
// orgs invite) and no "organization" creates the invited account and its
// membership in one step, even when Config.SignupOpen is false; the email
// must be the invited one (403 otherwise), and a used, cancelled or
// expired invitation is a 409 or 410 that says which. The answer's
// "organization" is the one joined, with the invitation's role. The
// invitation's link, /aaa/v1/invitations/<code>, is a page where the
// invitee logs in, or creates the account, and joins; see invitation.go.
//
// # Login
//
//	POST /aaa/v1/sessions HTTP/1.1
//	Content-Type: application/json
//
//	{"email": "ada@example.com", "password": "correct horse"}
//
//	HTTP/1.1 201 Created
//
//	{"session_id": "6f1c…", "secret": "cvs1_6f1c….…", "token": "fm2_…",
//	 "expires_at": "2026-01-01T00:00:00Z", "user": {"id": 1, "email": "ada@example.com"}}
//
// The token is the session token (keyring.Keyring.MintSession): a
// permission token for the token location, valid until expires_at
// (Config.SessionTTL, 30 days by default), with a third-party caveat to
// this service confined to the user. It is sent without a discharge: the
// client fetches one from the discharger with the secret, and renews it
// before it runs out. A wrong email and a wrong password both get
//
//	HTTP/1.1 401 Unauthorized
//
//	{"error": "invalid email or password"}
//
// and cost the same time. Login attempts (here and on the browser pages)
// are limited per account and per client address (an IPv6 client by its
// /64); over the limit the answer is 429 with Retry-After. The counts are
// kept in Config.Throttles: in memory for a server on its own, in the
// database that replicas share (PostgreSQL), so that they count as one.
//
// # Browser login (caveat auth login --web)
//
//	POST /aaa/v1/sessions/web HTTP/1.1
//
//	HTTP/1.1 201 Created
//
//	{"user_interactive": {"user_url": "https://auth.example.com/aaa/v1/login/cli/<32 hex>",
//	                      "poll_url": "https://auth.example.com/aaa/v1/sessions/web/poll/<32 hex>"}}
//
// The body may be empty or {}. The user opens user_url, a login page; the
// CLI polls:
//
//	GET /aaa/v1/sessions/web/poll/<32 hex> HTTP/1.1
//
//	HTTP/1.1 202 Accepted
//
//	{"error": "not ready"}
//
// until the user has logged in on the page; then once 200 with the body of
// POST /aaa/v1/sessions (the session is created at that moment), and 404
// {"error": "not found"} afterwards, or for a flow that expired
// (Config.FlowTTL, 15 minutes by default). Whoever holds a user URL can
// log in there and so hand a session to whoever started the flow; the page
// therefore says when and from which address the flow started.
//
// # Session
//
//	GET /aaa/v1/whoami HTTP/1.1
//	Authorization: Bearer cvs1_…
//
//	HTTP/1.1 200 OK
//
//	{"user": {"id": 1, "email": "ada@example.com"},
//	 "organizations": [{"id": 1, "slug": "acme", "role": "admin"}],
//	 "session": {"id": "6f1c…", "expires_at": "2026-01-01T00:00:00Z"}}
//
//	DELETE /aaa/v1/sessions/current HTTP/1.1
//	Authorization: Bearer cvs1_…
//
//	HTTP/1.1 204 No Content
//
// A missing, invalid, unknown, expired or revoked credential is a 401 whose
// error says which.
//
// # Discharger
//
// The discharger is a tp.Server at /aaa/v1/.well-known/macfly/3p, opening
// tickets with keyring.Keyring.LoginTicketKey:
//
//	POST /aaa/v1/.well-known/macfly/3p HTTP/1.1
//	Content-Type: application/json
//	Authorization: Bearer cvs1_…
//
//	{"ticket": "<base64>", "parent_binding": "<base64>"}
//
//	HTTP/1.1 201 Created
//
//	{"discharge": "fm2_…"}
//
// With a session secret whose session is active, the ticket's caveats are
// cleared against an auth.DischargeRequest holding the user's Fly.io
// identity (user id and organization ids) and the discharge's expiry: now
// plus Config.DischargeTTL (10 minutes by default), shortened by the
// ticket's MaxValidity and by the end of the session. If they pass, the
// discharge is a proof carrying ValidityWindow(now, expiry) and
// FlyioUserID(user), bound to the parent token when the client sends
// parent_binding; if not, the answer is 403 with an error naming the
// caveat, e.g.
//
//	{"error": "discharge refused: caveat 0 (ConfineUser): must authenticate with Fly.io account 43 (got [42])"}
//
// A bad, unknown, expired or revoked secret is a 401. Without an
// Authorization header the answer is the user-interactive flow of spec
// §8.3, with a user URL /aaa/v1/login/discharge/<32 hex>: the same login
// page, after which the flow is completed with the discharge, or failed
// with the refusing caveat, for the client's next poll of
// /aaa/v1/.well-known/macfly/3p/poll/<32 hex>. The pages ignore a
// return_to parameter.
//
// Pending browser flows of both kinds are kept in Config.WebLogins and
// Config.DischargeFlows: in memory for a server on its own, in the shared
// database for replicas, so that a poll may reach any replica. Anyone can
// start one, so they are throttled and bounded, and a pending flow is
// never dropped to make room for another:
//
//   - starting a flow (POST /aaa/v1/sessions/web, or a discharge request
//     without Authorization) takes one attempt from the client address's
//     bucket, the one that logins and signups take from
//     (Config.AddressLimit), and is refused with 429 and Retry-After when
//     it is empty;
//   - each store holds at most Config.MaxFlows pending flows (10 000); when
//     full, a new flow is refused with 429 and a Retry-After saying when
//     the oldest expires;
//   - one ticket opens at most tp.DefaultMaxFlowsPerTicket (5) pending
//     discharge flows, refused alike.
package identity
