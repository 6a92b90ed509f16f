// Package caveat implements fm2 tokens, the macaroons of Fly.io's platform
// (spec/fm2-format.md): minting, attenuation, third-party caveats and their
// discharges, verification and clearing. It does no I/O and keeps no state
// but the registry of caveat types; the Example shows a token's whole life.
//
// # Tokens
//
// A Macaroon is a nonce, a location, a list of caveats and the tail of an
// HMAC chain over them. Mint signs a new one with a SigningKey; the nonce's
// key id tells the verifier which key. Add appends caveats: that is
// attenuation, it needs no key, and a caveat can only take away. String and
// Parse convert the text form "fm2_…".
//
// # Third parties
//
// Add3P adds a caveat that a third party, typically a login service, must
// discharge. It seals a ticket with an EncryptionKey shared with that party;
// the party opens it (OpenTicket), checks the ticket's caveats against whom
// it authenticated, and issues a discharge (Ticket.Discharge): a proof,
// bound to the token with Bind, that may carry attestations such as
// auth.FlyioUserID. Package tp carries the protocol over HTTP.
//
// # Verifying and clearing
//
// Checking a token is two steps, as in the reference library. ParseBundle
// reads an Authorization header ("FlyV1 fm2_…,fm2_…"); Bundle.Verify checks
// the chain of the permission token for a location under the key KeyFunc
// returns, each discharge under the key its 3P caveat carries, bindings, and
// which attestations come from a TrustedThirdParties key. It returns a
// *Verified: which permission token verified, its key id (the caller looks
// up whose key that is), the verified CaveatSet, and the discharge that
// answered each third-party caveat. Bundle.ThirdParties and
// Bundle.DischargeFor relate third-party caveats to discharges without a
// key, for tools that describe or renew a bundle. CaveatSet.Clear then
// asks every caveat whether it allows an Access, the operation the caller
// describes (for example *flyio.Access), and names the caveat that refuses.
// Bundle.Authorize does both. Verification costs at most a few cryptographic operations per
// caveat and token, however the bundle is arranged (README, "Verification
// is linear in the bundle"); VerifyWith also refuses revoked branches.
//
// # Caveats
//
// A Caveat is a typed value; a token keeps each as a RawCaveat, its type
// number and the exact bytes that were MAC'd. The types are registered by
// the packages that define them: this one registers ValidityWindow, 3P and
// BindToParentToken; resset, flyio and auth register the rest of the
// format's catalogue (importing them is enough). Register adds a type of
// your own, in the private range from TypeUserDefinedMin. A caveat of a type
// this process does not know decodes to *Unregistered, keeps its bytes, and
// refuses every access.
//
// # Errors
//
// Decoding and verification errors wrap ErrMalformed or ErrInvalid;
// clearing errors wrap ErrUnauthorized and its classes
// (ErrUnauthorizedForAction, ErrResourceUnspecified, …), inside a
// *DeniedError that names the caveat. Every decoder enforces the limits of
// limits.go (MaxTokenSize, MaxCaveats, …) and fails with ErrLimit beyond
// them.
package caveat
