// Package credentials finds the credentials for a registry the way the
// docker CLI does: credential helpers, a credential store, and the auths of
// config.json under $DOCKER_CONFIG.
package credentials

// Credential is what a registry client authenticates with. At most one of
// the three forms is used: a username and password (basic auth, or the
// password grant at a token server), an identity token (an OAuth2 refresh
// token, as docker's "identitytoken"), or a registry token sent as it is.
// The zero Credential means anonymous.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

// Empty reports whether c carries no credential (anonymous access).
func (c Credential) Empty() bool {
	return c == Credential{}
}
