package credentials_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/registry/credentials"
)

// Finding the credential for a repository, as docker and podman would.
func ExampleStore_Get() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, []byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
		"quay.io/team": {"username": "team", "password": "pw"}
	}}`), 0o600)
	os.Setenv(credentials.EnvAuthConfig, "")

	s, _ := credentials.NewStore(credentials.Options{ConfigPath: config})
	ctx := context.Background()
	for _, q := range [][2]string{{"docker.io", "library/busybox"}, {"quay.io", "team/app"}, {"quay.io", "other/app"}} {
		c, src, err := s.Lookup(ctx, q[0], q[1])
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s/%s: user %q from %s\n", q[0], q[1], c.Username, src)
	}
	// Output:
	// docker.io/library/busybox: user "hub" from auths["https://index.docker.io/v1/"]
	// quay.io/team/app: user "team" from auths["quay.io/team"]
	// quay.io/other/app: user "" from none
}

// Logging in: the credential is checked by verify (the registry client's),
// then kept in the configured helper or in config.json.
func ExampleLogin() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	s, _ := credentials.NewStore(credentials.Options{ConfigPath: filepath.Join(dir, "config.json")})
	verify := func(ctx context.Context, host string, c credentials.Credential) error { return nil }
	err := credentials.Login(context.Background(), s, "registry.example.com", credentials.Credential{Username: "me", Password: "pw"}, verify)
	fmt.Println(err)
	data, _ := os.ReadFile(s.ConfigPath())
	fmt.Print(string(data))
	// Output:
	// <nil>
	// {
	// 	"auths": {
	// 		"registry.example.com": {
	// 			"auth": "bWU6cHc="
	// 		}
	// 	}
	// }
}
