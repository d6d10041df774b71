package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// HelperPrefix starts the name of every credential helper program.
const HelperPrefix = "docker-credential-"

// tokenUsername is the user name under which helpers keep identity tokens.
const tokenUsername = "<token>"

// notFoundMessage is what helpers print when they hold nothing for a server.
const notFoundMessage = "credentials not found in native keychain"

// maxHelperOutput caps what is read from a helper.
const maxHelperOutput = 1 << 20

// Helper runs a credential helper, docker-credential-<Name>, with the
// protocol of docker's credential helpers: the action as the only argument
// (get, store, erase, list), the server URL or a JSON document on standard
// input, JSON on standard output, and a message on standard output with a
// non-zero exit on failure.
type Helper struct {
	// Name is the helper's suffix: "pass" runs docker-credential-pass.
	Name string
	// Source says where the helper was configured, for error messages
	// ("credsStore in /home/u/.docker/config.json").
	Source string
}

// Program returns the helper's program name.
func (h Helper) Program() string { return HelperPrefix + h.Name }

func (h Helper) what() string {
	if h.Source == "" {
		return "credential helper " + h.Program()
	}
	return "credential helper " + h.Program() + " (" + h.Source + ")"
}

// helperCreds is the JSON the helpers exchange.
type helperCreds struct {
	ServerURL string
	Username  string
	Secret    string
}

// capped collects at most maxHelperOutput bytes.
type capped struct {
	bytes.Buffer
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if c.Len()+len(p) > maxHelperOutput {
		c.over = true
		p = p[:max(0, maxHelperOutput-c.Len())]
	}
	c.Buffer.Write(p)
	return len(p), nil
}

// run runs the helper with one action and input, returning its standard
// output. A failure names the helper, the action and what the helper said;
// "credentials not found" matches errdef.ErrNotFound and a helper that is
// not installed errdef.ErrUnavailable.
func (h Helper) run(ctx context.Context, action string, input []byte) ([]byte, error) {
	if h.Name == "" || strings.ContainsAny(h.Name, `/\`) {
		return nil, fmt.Errorf("%s: %w: invalid helper name %q", h.what(), errdef.ErrInvalid, h.Name)
	}
	path, err := exec.LookPath(h.Program())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s is not installed (not found on PATH)", h.what(), action, errdef.ErrUnavailable, h.Program())
	}
	cmd := exec.CommandContext(ctx, path, action)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s: %w", h.what(), action, ctx.Err())
	}
	if stdout.over {
		return nil, fmt.Errorf("%s %s: %w: more than %d bytes of output", h.what(), action, errdef.ErrTooLarge, maxHelperOutput)
	}
	if err != nil {
		msg := strings.TrimSpace(stdout.String())
		if msg == notFoundMessage {
			return nil, fmt.Errorf("%s %s: %w: %s", h.what(), action, errdef.ErrNotFound, msg)
		}
		detail := msg
		if e := strings.TrimSpace(stderr.String()); e != "" {
			if detail != "" {
				detail += "; "
			}
			detail += "stderr: " + e
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("%s %s: exited with status %d: %s", h.what(), action, exit.ExitCode(), detail)
		}
		return nil, fmt.Errorf("%s %s: %w", h.what(), action, err)
	}
	return stdout.Bytes(), nil
}

// Get asks the helper for the credential of serverURL. Nothing stored
// matches errdef.ErrNotFound.
func (h Helper) Get(ctx context.Context, serverURL string) (Credential, error) {
	out, err := h.run(ctx, "get", []byte(serverURL))
	if err != nil {
		return Credential{}, err
	}
	var c helperCreds
	if err := json.Unmarshal(out, &c); err != nil {
		return Credential{}, fmt.Errorf("%s get: %w: output is not the JSON expected: %v", h.what(), errdef.ErrInvalid, err)
	}
	if c.Username == tokenUsername {
		return Credential{IdentityToken: c.Secret}, nil
	}
	return Credential{Username: c.Username, Password: c.Secret}, nil
}

// Store gives the helper the credential of serverURL. An identity token is
// stored under the user name "<token>", as docker does; a registry token
// cannot be kept by a helper (errdef.ErrUnsupported).
func (h Helper) Store(ctx context.Context, serverURL string, cred Credential) error {
	c := helperCreds{ServerURL: serverURL, Username: cred.Username, Secret: cred.Password}
	switch {
	case cred.RegistryToken != "":
		return fmt.Errorf("%s store: %w: credential helpers cannot keep a registry token", h.what(), errdef.ErrUnsupported)
	case cred.IdentityToken != "":
		c.Username, c.Secret = tokenUsername, cred.IdentityToken
	}
	in, _ := json.Marshal(c)
	_, err := h.run(ctx, "store", in)
	return err
}

// Erase removes the credential of serverURL from the helper; one it does
// not hold matches errdef.ErrNotFound.
func (h Helper) Erase(ctx context.Context, serverURL string) error {
	_, err := h.run(ctx, "erase", []byte(serverURL))
	return err
}

// List returns the server URLs the helper holds credentials for, with
// their user names.
func (h Helper) List(ctx context.Context) (map[string]string, error) {
	out, err := h.run(ctx, "list", nil)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("%s list: %w: output is not the JSON expected: %v", h.what(), errdef.ErrInvalid, err)
	}
	return m, nil
}
