// Package api declares the JSON shapes of a caveat server's HTTP APIs: the
// authority's (/v1/tokens, /v1/orgs, /v1/apps, members and invitations),
// the identity service's (/aaa/v1) and the Machines API's
// (/v1/apps/{app}/machines).
//
// The server's handlers encode and decode these types, and package client
// decodes and encodes the same ones, so that a field renamed on one side
// and not on the other is a compile error instead of a silent mismatch.
// The package holds declarations only: no behaviour, and no dependency on
// the server's store or internals, so that any Go program can import it.
//
// # Compatibility
//
// Field names and encodings are part of the wire format. Where a shape is
// Fly.io's (the token judging endpoints, the Machines API), it follows
// Fly's own so that Fly's clients port with a base-URL change; caveat's own
// fields ride along in the same objects, which Fly's clients ignore. A
// field is added with omitempty or omitzero when older clients must not
// see it; a field is never renamed or removed.
package api
