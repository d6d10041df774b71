package transfer

import (
	"context"

	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/client"
	"github.com/lading-oci/lading/registry/credentials"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DockerCredentials returns a credential lookup for registry/client that
// finds credentials as the docker CLI does (registry/credentials over
// $DOCKER_CONFIG/config.json, or path when it is not "").
func DockerCredentials(path string) (client.CredentialLookup, error) {
	store, err := credentials.NewStore(credentials.Options{ConfigPath: path})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, registry, repository string) (credentials.Credential, string, error) {
		cred, src, err := store.Lookup(ctx, registry, repository)
		return cred, src.String(), err
	}, nil
}

// openRegistry opens the repository a registry reference names through
// opts.Client, or a client of its own with the docker CLI's credentials.
func openRegistry(ctx context.Context, r ref.Reference, opts OpenOptions) (*Target, error) {
	c := opts.Client
	if c == nil {
		lookup, err := DockerCredentials("")
		if err != nil {
			return nil, err
		}
		if c, err = client.New(client.WithCredentialLookup(lookup)); err != nil {
			return nil, err
		}
	}
	repo, err := c.RepositoryOf(r)
	if err != nil {
		return nil, err
	}
	t := &Target{Ref: r, Store: repo, repo: repo}
	t.resolve = func(ctx context.Context) (ocispec.Descriptor, error) {
		reference := r.Tag()
		if d := r.Digest(); d != "" {
			reference = d.String()
		}
		if reference == "" {
			reference = "latest"
		}
		return repo.Resolve(ctx, reference)
	}
	return t, nil
}

// Repository returns the registry repository behind t, if it is one.
func (t *Target) Repository() (*client.Repository, bool) {
	return t.repo, t.repo != nil
}
