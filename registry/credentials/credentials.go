// Package credentials finds, keeps and removes the credentials for a
// registry the way the docker CLI does: $DOCKER_AUTH_CONFIG, then the
// credential helper config.json names for the host (credHelpers) or for all
// hosts (credsStore), then the "auths" of $DOCKER_CONFIG/config.json
// (default ~/.docker/config.json), where keys may be spelt host,
// https://host, https://host/v1/ or, for Docker Hub,
// https://index.docker.io/v1/, and where podman's "host/namespace" keys
// are honoured for the repositories under them.
//
// Helpers are the docker-credential-NAME programs of docker's protocol
// (Helper). Store writes config.json atomically with mode 0600 under a lock
// on its directory, keeping every field it does not know.
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
