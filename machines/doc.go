// Package machines is caveat's Machines API: a reference resource server
// in the shape of Fly.io's Machines REST API, so that a client written for
// Fly's (an autoscaler, say) ports by changing the base URL and the token.
// Machines are records with a state machine; no VM runs.
//
// # Endpoints and the actions they need
//
// Every request but the action table needs a token (Authorization: FlyV1
// fm2_…, or Bearer). The request is authenticated once, through a
// middleware.Authenticator; then each access it makes is cleared with
// Principal.Allow. ORG and APP are the ids of {app}'s organization and
// app, ID the machine's id.
//
//	operation          method and path (under /v1/apps/{app}/machines)  action  access cleared
//	list               GET    ""  ?include_deleted= &region= &summary= &limit= &after=  r      {ORG, APP, machine: ID} for each machine (see Listing)
//	get                GET    /{id}                                        r      {ORG, APP, machine: ID}
//	wait               GET    /{id}/wait?state= &timeout= &instance_id=    r      {ORG, APP, machine: ID}
//	start              POST   /{id}/start                                  C      {ORG, APP, machine: ID}
//	stop               POST   /{id}/stop  {signal?, timeout?}              C      {ORG, APP, machine: ID}
//	suspend            POST   /{id}/suspend                                C      {ORG, APP, machine: ID}
//	restart            POST   /{id}/restart?force_stop= &timeout= &signal= C      {ORG, APP, machine: ID}
//	signal             POST   /{id}/signal  {signal}                       C      {ORG, APP, machine: ID}
//	create             POST   ""  {config, region?, name?, skip_launch?, lease_ttl?}
//	                                                                       c      {ORG, APP, machine: ""} (a machine not created yet)
//	update             POST   /{id}  (as create, without lease_ttl)        w      {ORG, APP, machine: ID}
//	                                                                       + C    when it changes the machine's state (see States)
//	destroy            DELETE /{id}?force=                                 d      {ORG, APP, machine: ID}
//	lease acquire      POST   /{id}/lease?ttl=                             C      {ORG, APP, machine: ID}
//	lease refresh      POST   /{id}/lease?ttl=  (fly-machine-lease-nonce)  C      {ORG, APP, machine: ID}
//	lease get          GET    /{id}/lease                                  r      {ORG, APP, machine: ID}
//	lease release      DELETE /{id}/lease  (fly-machine-lease-nonce)       C      {ORG, APP, machine: ID}
//	metadata get       GET    /{id}/metadata                               r      {ORG, APP, machine: ID}
//	metadata set       POST   /{id}/metadata/{key}  {value}                w      {ORG, APP, machine: ID}
//	metadata delete    DELETE /{id}/metadata/{key}                         w      {ORG, APP, machine: ID}
//	action table       GET    /v1/machines/actions                         —      none: the table is public
//
// The same table is served as JSON at GET /v1/machines/actions (see
// Actions). Leases are action C: a lease coordinates the control
// operations it guards (an autoscaler holding rC may take one around a
// start), it changes neither the machine's config nor its existence, and
// it ends by itself at its expiry. A token attenuated with
// [{"type":"Machines","body":{"machines":{"":"rC"}}}] can therefore list,
// get, wait for, start, stop, suspend, restart, signal and lease machines,
// and is refused create (c), update and metadata changes (w) and destroy
// (d), with a 403 naming the Machines caveat and the missing action:
//
//	{"error": "caveat 3 (Machines): unauthorized for action: action d on machine \"…\": d not permitted (permitted: rC)"}
//
// # Answers show only what the token may read
//
// An answer carries only what the principal may read (action r on the
// machine), whatever the operation. To a principal without r:
//
//   - create and update answer {"id": …} (create adds the nonce of the
//     lease it was asked to take), not the machine;
//   - start leaves previous_state out; lease acquire and refresh leave
//     version (the machine's instance id) out;
//   - metadata set and delete answer 204 No Content, not the metadata;
//   - a 409 for a leased machine does not name the holder or the end of
//     the lease.
//
// Refusals of an operation in the wrong state (412) do name the state:
// whether the operation succeeds tells as much, and the client needs it
// to know what to do.
//
// An update changes the machine's state unless it has skip_launch and
// the machine is created or stopped; otherwise it needs C as well as w,
// so that a token that gave up C (start, stop) cannot start or stop a
// machine through an update.
//
// # Listing
//
// List shows each machine whose access {ORG, APP, machine: ID, action r}
// is allowed, and leaves the others out. It is refused (403, with the
// refusal) only when the principal may not read the app at all: when no
// machine is shown, the app-level access {ORG, APP, action r} must be
// allowed, where a refusal whose only causes are
// caveat.ErrResourceUnspecified counts as allowed provided the principal
// belongs to the app's organization: caveats that restrict machines (or
// volumes, or commands) say nothing about the app itself, so an rC token
// on an app without machines gets [], not a 403.
//
// A list answers one page of the app's machines, oldest first: limit of
// them (100 by default, at most 1 000) after the cursor after. The body
// is Fly's array; when another page follows, a Link header names it
// (<…?after=CURSOR&limit=N>; rel="next"). A page may hold fewer machines
// than limit, or none, when some are hidden or filtered out: follow the
// link until there is none.
//
// # Apps
//
// {app} is an app's name. A named token's app is looked up in the token's
// organization only: another organization's app is a 404, as an app that
// does not exist, so that other organizations' app names do not leak. A
// session (a logged-in user) has no organization of its
// own: the name is looked up in the organizations the user belongs to,
// among the apps the session may read; found in several, it is a 409 that
// names them (use a named token of one organization). An app that does
// not exist, or that the principal may not see, is a 404; an app of the
// token's organization that its caveats do not allow is a 403 naming the
// caveat.
//
// # States
//
// A machine is created, starting, started, stopping, stopped, suspending,
// suspended, replacing, destroying or destroyed. The operations are legal
// only in these states; in any other they are refused with 412
// {"error": "machine … is stopped: stop needs a machine that is started or suspended"}:
//
//	start     created, stopped, suspended   → starting → started
//	stop      started, suspended            → stopping → stopped
//	suspend   started                       → suspending → suspended
//	restart   started                       → stopping → starting → started
//	signal    started                       (recorded as an event; nothing runs)
//	update    created, started, stopped,    → replacing → started (with skip_launch: stopped,
//	          suspended                       or created if it was)
//	destroy   created, stopped, suspended   → destroying → destroyed
//	          (force=true: any state but destroying and destroyed)
//	create    (new)                         → created; unless skip_launch: → starting → started
//
// Each step of a transition takes Config.TransitionTime. Nothing runs in
// the background: the end of a transition is stored as a deadline, and the
// first request to read the machine after it records the new state (with
// an event dated at the deadline). Every change of state appends an event
// {type, status, source, timestamp}; machines are shown with their ten
// newest. Wait really waits: it wakes when this process changes the
// machine, when a transition is due to end, and every Config.WaitPoll (to
// see changes made by other replicas); it answers 408 at its timeout (at
// most 60 s, the default) and 412 for a destroyed machine. Destroyed
// machines stay, listed with include_deleted=true, and free their names.
//
// Concurrent changes of one machine are decided on its stored version
// (store.Machines compare-and-set): a change that lost the race reads the
// machine again and decides again, so two starts of a stopped machine give
// one 200 and one 412, never two transitions.
//
// # Leases
//
// POST /{id}/lease?ttl=N (seconds, default 30, at most 3600) takes the
// machine's lease and answers
//
//	{"status": "success", "data": {"nonce": "…", "expires_at": UNIX, "owner": "token:…", "version": INSTANCE_ID}}
//
// or 409 naming the holder. The same call with the nonce in the
// fly-machine-lease-nonce header refreshes it; DELETE with the header
// releases it. While a lease is active, every change of the machine needs
// its nonce in that header (409 without it or with another, naming the
// holder to a principal that may read the machine); reading does not. The nonce is shown only to the client that took the lease (GET
// /lease leaves it out). Owners are "token:ID" for named tokens and
// "user:ID" for sessions.
//
// # Errors
//
// Every error is {"error": "…"}: 401 and 403 exactly as
// middleware.WriteError gives them; 400 for a malformed or unknown field,
// a bad parameter or an invalid config; 413 for a body over the limit;
// 404 for an unknown app, machine, lease or metadata key; 408 for a wait
// that timed out; 409 for a name taken, a lease conflict or an ambiguous
// app name; 412 for an operation the machine's state does not allow.
package machines
