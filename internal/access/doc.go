// Package access owns who a caller is and what the caller may do:
// identities (API tokens, OIDC), the access policies kept in the
// database, the ladon Manager that finds candidate policies by index, and
// the warden that decides. openapi asks it once per request; domain
// services receive the caller and ask it where a rule is about data.
//
// It imports the catalog domain for its error type and events, and ladon;
// never a database driver or HTTP framework: stores implement PolicyStore.
package access
