package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/client"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

func newLoginCmd(o *rootOptions) *cobra.Command {
	var (
		username, password string
		passwordStdin      bool
		plainHTTP          bool
	)
	cmd := &cobra.Command{
		Use:   "login [HOST]",
		Short: "Log in to a registry: check the credentials and keep them as docker login does",
		Long: `Log in to a registry. The user name and password are checked against the
registry (a GET of /v2/ with them, following a token challenge once), then kept
where the docker CLI keeps them: in the credential helper that config.json
names for the host (credHelpers) or for all hosts (credsStore), else in the
"auths" of $DOCKER_CONFIG/config.json (default ~/.docker/config.json).
Without HOST, Docker Hub (docker.io).

On a terminal, what is not given is asked for, the password without echo.`,
		Example: `  lading login --username me ghcr.io
  echo "$TOKEN" | lading login --username me --password-stdin registry.example.com`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			host, err := credentials.NormalizeHost(server)
			if err != nil {
				return err
			}
			if password != "" && passwordStdin {
				return fmt.Errorf("login: %w: --password and --password-stdin cannot be used together", errdef.ErrInvalid)
			}
			if password != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the command line is insecure. Use --password-stdin.")
			}
			in := cmd.InOrStdin()
			if passwordStdin {
				if username == "" {
					return fmt.Errorf("login: %w: --password-stdin needs --username", errdef.ErrInvalid)
				}
				data, err := io.ReadAll(io.LimitReader(in, 1<<20))
				if err != nil {
					return fmt.Errorf("login: read password from stdin: %w", err)
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if username == "" || password == "" {
				f, ok := in.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return fmt.Errorf("login: %w: give --username and --password-stdin (standard input is not a terminal to ask on)", errdef.ErrInvalid)
				}
				if username == "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "Username: ")
					line, err := bufio.NewReader(f).ReadString('\n')
					if err != nil && !errors.Is(err, io.EOF) {
						return err
					}
					username = strings.TrimSpace(line)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Password: ")
				pw, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(cmd.ErrOrStderr())
				if err != nil {
					return fmt.Errorf("login: read password: %w", err)
				}
				password = string(pw)
			}
			if username == "" || password == "" {
				return fmt.Errorf("login: %w: user name and password must not be empty", errdef.ErrInvalid)
			}
			store, err := credentials.NewStore(credentials.Options{})
			if err != nil {
				return err
			}
			verify := func(ctx context.Context, host string, cred credentials.Credential) error {
				return o.verifyLogin(ctx, host, cred, plainHTTP)
			}
			cred := credentials.Credential{Username: username, Password: password}
			if err := credentials.Login(ctx, store, host, cred, verify); err != nil {
				return err
			}
			printf(cmd, "Login Succeeded\n")
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (insecure: it shows in the process list; use --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password (or token) from standard input")
	cmd.Flags().BoolVar(&plainHTTP, "plain-http", false, "talk to the registry over plain HTTP (loopback registries fall back to it by themselves)")
	return cmd
}

func newLogoutCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "logout [HOST]",
		Short:   "Remove the credentials kept for a registry (Docker Hub without HOST)",
		Example: "  lading logout ghcr.io",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			host, err := credentials.NormalizeHost(server)
			if err != nil {
				return err
			}
			store, err := credentials.NewStore(credentials.Options{})
			if err != nil {
				return err
			}
			if err := store.Erase(cmd.Context(), host); err != nil {
				if errors.Is(err, errdef.ErrNotFound) {
					return fmt.Errorf("logout: not logged in to %s: %w", host, err)
				}
				return err
			}
			printf(cmd, "Removing login credentials for %s\n", host)
			return nil
		},
	}
}

// verifyLogin checks cred against the registry with the registry client:
// GET /v2/ answers 200 with them, after whatever challenge (basic, or a
// bearer token from the registry's token server) the registry makes.
func (o *rootOptions) verifyLogin(ctx context.Context, host string, cred credentials.Credential, plainHTTP bool) error {
	apiHost := ref.RegistryHost(host)
	opts := []client.Option{client.WithLogger(o.log()), client.WithUserAgent("lading/" + version),
		client.WithCredentialLookup(func(context.Context, string, string) (credentials.Credential, string, error) {
			return cred, "the credentials given to login", nil
		})}
	if plainHTTP || o.reg.plainHTTP {
		opts = append(opts, client.WithPlainHTTP(apiHost))
	}
	if o.reg.tlsSkipVerify {
		opts = append(opts, client.WithInsecureSkipVerify(apiHost))
	}
	opts = append(opts, certsFor(apiHost)...)
	c, err := client.New(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx, apiHost)
}
