package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

func newLoginCmd(_ *rootOptions) *cobra.Command {
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
				return verifyLogin(ctx, host, cred, plainHTTP)
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

// verifyLogin checks cred against the registry: GET /v2/ with basic
// authentication; a Bearer challenge is followed once, asking its realm
// for a token with the same credentials. A registry on a loopback address
// that does not speak TLS is tried again over plain HTTP.
func verifyLogin(ctx context.Context, host string, cred credentials.Credential, plainHTTP bool) error {
	apiHost := host
	if host == "docker.io" {
		apiHost = "registry-1.docker.io"
	}
	client := &http.Client{Timeout: 30 * time.Second}
	scheme := "https"
	if plainHTTP {
		scheme = "http"
	}
	resp, err := getWithBasic(ctx, client, scheme+"://"+apiHost+"/v2/", cred)
	if err != nil && !plainHTTP && isLoopback(apiHost) {
		resp, err = getWithBasic(ctx, client, "http://"+apiHost+"/v2/", cred)
	}
	if err != nil {
		return fmt.Errorf("reach %s: %w: %v", apiHost, errdef.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		challenge := resp.Header.Get("WWW-Authenticate")
		if scheme, params := parseChallenge(challenge); strings.EqualFold(scheme, "bearer") && params["realm"] != "" {
			return fetchToken(ctx, client, params, cred)
		}
		return fmt.Errorf("%s rejected the credentials: %w (HTTP 401)", apiHost, errdef.ErrUnauthorized)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %w (HTTP 403)", apiHost, errdef.ErrDenied)
	}
	return fmt.Errorf("%s answered GET /v2/ with HTTP %d: %w", apiHost, resp.StatusCode, errdef.ErrUnavailable)
}

func getWithBasic(ctx context.Context, client *http.Client, u string, cred credentials.Credential) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(cred.Username, cred.Password)
	return client.Do(req)
}

// fetchToken asks a token server for a token with basic authentication,
// which is what proves the credentials there.
func fetchToken(ctx context.Context, client *http.Client, params map[string]string, cred credentials.Credential) error {
	u, err := url.Parse(params["realm"])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("token realm %q: %w", params["realm"], errdef.ErrInvalid)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("account", cred.Username)
	u.RawQuery = q.Encode()
	resp, err := getWithBasic(ctx, client, u.String(), cred)
	if err != nil {
		return fmt.Errorf("reach token server %s: %w: %v", u.Host, errdef.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var tok struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil || (tok.Token == "" && tok.AccessToken == "") {
			return fmt.Errorf("token server %s: %w: no token in its answer", u.Host, errdef.ErrInvalid)
		}
		return nil
	case http.StatusUnauthorized:
		return fmt.Errorf("token server %s rejected the credentials: %w (HTTP 401)", u.Host, errdef.ErrUnauthorized)
	case http.StatusForbidden:
		return fmt.Errorf("token server %s: %w (HTTP 403)", u.Host, errdef.ErrDenied)
	}
	return fmt.Errorf("token server %s answered HTTP %d: %w", u.Host, resp.StatusCode, errdef.ErrUnavailable)
}

// parseChallenge splits a WWW-Authenticate value: `Bearer realm="…",service="…"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(v, `"`) {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k], rest = v[1:1+end], v[2+end:]
		} else {
			val, after, _ := strings.Cut(v, ",")
			params[k], rest = strings.TrimSpace(val), after
		}
	}
	return scheme, params
}

func isLoopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
