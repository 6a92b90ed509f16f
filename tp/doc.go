// Package tp is the third-party discharge protocol (spec §8): how a client
// holding a token with a third-party caveat gets the discharge from the
// third party named by the caveat, and how a third party (a "discharger")
// serves it. Server is the discharger's HTTP side; Client is the holder's.
//
// The ticket is the Ticket field of the third-party caveat: sealed bytes
// that only the discharger can open (caveat.OpenTicket), holding the caveats
// it is asked to check and the key with which it signs the discharge.
//
// # Init
//
// The client posts the ticket to the well-known path under the caveat's
// location, keeping the location's path and never doubling its slash:
//
//	POST /aaa/v1/.well-known/macfly/3p HTTP/1.1
//	Host: auth.example.com
//	Content-Type: application/json
//	Authorization: Bearer <client credential, configured per host>
//	Cookie: <the principal's session, if any>
//
//	{"ticket": "<standard padded base64 of the ticket>",
//	 "parent_binding": "<standard padded base64 of 16 bytes>"}
//
// The third party answers in one of three ways, or with an error.
//
// # Immediate discharge
//
//	HTTP/1.1 201 Created
//	Content-Type: application/json
//
//	{"discharge": "fm2_…"}
//
// The discharge is a full fm2_ token: a proof whose nonce KID is the ticket.
//
// # Polling
//
//	HTTP/1.1 201 Created
//
//	{"poll_url": "https://auth.example.com/aaa/v1/.well-known/macfly/3p/poll/<32 hex>"}
//
// The client GETs the poll URL until the answer is not 202, waiting 1 s,
// then 2 s, 4 s… up to a cap:
//
//	HTTP/1.1 202 Accepted
//
//	{"error": "not ready"}
//
//	HTTP/1.1 200 OK
//
//	{"discharge": "fm2_…"}
//
// or, when the flow failed, 200 with {"error": "<why>"}. The body of a 202 is
// ignored. A finished flow is answered once: later polls get
//
//	HTTP/1.1 404 Not Found
//
//	{"error": "not found"}
//
// # User interaction
//
//	HTTP/1.1 201 Created
//
//	{"user_interactive": {"user_url": "https://auth.example.com/aaa/v1/login/<32 hex>",
//	                      "poll_url": "https://auth.example.com/aaa/v1/.well-known/macfly/3p/poll/<32 hex>"}}
//
// The client shows the user URL to the user (Client.UserURL) and polls as
// above while the user logs in or approves on the third party's page.
//
// # Errors
//
// Any status with {"error": "<message>"}. Server answers an unreadable body,
// unknown JSON fields or a ticket that does not open with 400 (413 for a
// body over 64 KiB, 405 for a wrong method, 415 for a content type other
// than JSON) naming the problem, and keeps 500 "internal error" for its own
// failures. When the flow store has no room for a new flow — it holds its
// maximum, or the ticket has DefaultMaxFlowsPerTicket pending flows — the
// answer is 429 with a Retry-After header; pending flows are never dropped
// to make room. An application's rate limit (Throttle) answers the same
// way.
//
// # Binding to the parent token
//
// A discharge is a proof: once encoded, nobody can add a caveat to it, not
// even its holder, so a client cannot bind a discharge it has received to
// its permission token (spec §4.6, §4.7). Unbound, a discharge satisfies the
// ticket's caveat in any token carrying that ticket. This package therefore
// extends the init request with "parent_binding", the binding ID of the
// permission token (BindingID), and Server adds BindToParentToken with it
// before finalising the discharge. The discharge then works with that token
// and tokens attenuated from it, and with no other. The reference server
// ignores the field; the reference client does not send it, and Server then
// issues an unbound discharge (the application sees Request.Bound and may
// refuse).
//
// # Differences from the reference implementation
//
// Server sets Content-Type: application/json and Cache-Control: no-store,
// answers client mistakes with 4xx instead of 500, refuses unknown fields and
// bodies over 64 KiB, stores flows under hashes of their secrets (never the
// secrets, the ticket's key or the discharge), and builds each discharge
// when it is handed out. Client resolves relative poll and user URLs against
// the init URL, checks that a discharge decodes and is for its ticket, and
// keeps every token of the input bundle rather than filtering it.
package tp
