// Package authority is the token authority of a caveat server: it holds the
// organizations' root keys sealed under the master key (through a
// keyring.Keyring, which the identity service shares), mints tokens from
// profiles, keeps the registry of named tokens, revokes them, and judges
// bundles for other services.
//
// Its operations return *fault.Error values for what the caller is told
// (a denial carries the caveats' refusals); the HTTP handlers, in the
// files named http*.go, turn them into statuses.
package authority
