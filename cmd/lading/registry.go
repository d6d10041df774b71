package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/client"
	"github.com/lading-oci/lading/registry/credentials"
	"github.com/lading-oci/lading/transfer"
)

// registryFlags are the flags of every command for the registries it talks
// to.
type registryFlags struct {
	plainHTTP     bool
	tlsSkipVerify bool
	username      string
	passwordStdin bool

	// Per side of a copy.
	srcPlainHTTP, destPlainHTTP bool
	srcTLSSkip, destTLSSkip     bool

	once     sync.Once
	password string
	pwErr    error
}

func (f *registryFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.BoolVar(&f.plainHTTP, "plain-http", false, "talk to registries over plain HTTP (loopback registries fall back to it by themselves)")
	pf.BoolVar(&f.tlsSkipVerify, "tls-skip-verify", false, "accept any TLS certificate from registries")
	pf.StringVar(&f.username, "username", "", "user name for registries (with --password-stdin); default: the docker CLI's credentials")
	pf.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password (or token) from stdin")
}

// registerSides adds copy's per-side flags.
func (f *registryFlags) registerSides(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.srcPlainHTTP, "src-plain-http", false, "talk to the source registry over plain HTTP")
	fs.BoolVar(&f.destPlainHTTP, "dest-plain-http", false, "talk to the destination registry over plain HTTP")
	fs.BoolVar(&f.srcTLSSkip, "src-tls-skip-verify", false, "accept any TLS certificate from the source registry")
	fs.BoolVar(&f.destTLSSkip, "dest-tls-skip-verify", false, "accept any TLS certificate from the destination registry")
}

// side says which end of a copy a reference is.
type side int

const (
	anySide side = iota
	srcSide
	destSide
)

// clientFor makes the registry client for reference r: its host's plain
// HTTP and TLS settings, credentials from --username/--password-stdin or
// as the docker CLI finds them, blobs not hashed twice (every reader in
// lading verifies what it reads).
func (o *rootOptions) clientFor(cmd *cobra.Command, r ref.Reference, sd side) (*client.Client, error) {
	f := &o.reg
	host := r.Host()
	opts := []client.Option{client.WithLogger(o.log()), client.WithUserAgent("lading/" + version), client.WithVerifyOnFetch(false)}
	if f.plainHTTP || sd == srcSide && f.srcPlainHTTP || sd == destSide && f.destPlainHTTP {
		opts = append(opts, client.WithPlainHTTP(host))
	}
	if f.tlsSkipVerify || sd == srcSide && f.srcTLSSkip || sd == destSide && f.destTLSSkip {
		opts = append(opts, client.WithInsecureSkipVerify(host))
	}
	opts = append(opts, certsFor(host)...)
	switch {
	case f.passwordStdin:
		if f.username == "" {
			return nil, usageError{fmt.Errorf("--password-stdin: %w: give --username too", errdef.ErrInvalid)}
		}
		f.once.Do(func() {
			data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
			f.password, f.pwErr = strings.TrimRight(string(data), "\r\n"), err
		})
		if f.pwErr != nil {
			return nil, fmt.Errorf("read the password from stdin: %w", f.pwErr)
		}
		cred := credentials.Credential{Username: f.username, Password: f.password}
		opts = append(opts, client.WithCredentialLookup(func(context.Context, string, string) (credentials.Credential, string, error) {
			return cred, "--username and --password-stdin", nil
		}))
	case f.username != "":
		return nil, usageError{fmt.Errorf("--username: %w: give the password with --password-stdin", errdef.ErrInvalid)}
	default:
		lookup, err := transfer.DockerCredentials("")
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithCredentialLookup(lookup))
	}
	return client.New(opts...)
}

// certsDirs are where CA certificates for a registry are looked for, as the
// docker engine and podman look: DIR/HOST/*.crt.
var certsDirs = []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}

// certsFor returns the client options that trust the CA certificates kept
// for host in docker's or podman's certs.d directories.
func certsFor(host string) []client.Option {
	var opts []client.Option
	for _, dir := range certsDirs {
		files, _ := filepath.Glob(filepath.Join(dir, host, "*.crt"))
		for _, f := range files {
			if pem, err := os.ReadFile(f); err == nil {
				opts = append(opts, client.WithCA(host, pem))
			}
		}
	}
	return opts
}
