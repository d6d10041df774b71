package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/server"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// serveConfig is the YAML configuration of `lading serve`; flags override
// it.
type serveConfig struct {
	Addr     string `yaml:"addr"`
	Root     string `yaml:"root"`
	ReadOnly bool   `yaml:"readOnly"`
	Sparse   bool   `yaml:"sparse"`
	Log      struct {
		Level  string `yaml:"level"`  // debug, info, warn, error
		Format string `yaml:"format"` // text, json
	} `yaml:"log"`
	TLS struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Auth struct {
		Htpasswd      string `yaml:"htpasswd"`
		Policy        string `yaml:"policy"`
		AnonymousPull bool   `yaml:"anonymousPull"`
		Token         struct {
			Enabled bool          `yaml:"enabled"`
			KeyFile string        `yaml:"keyFile"`
			TTL     time.Duration `yaml:"ttl"`
			Realm   string        `yaml:"realm"`
			Service string        `yaml:"service"`
		} `yaml:"token"`
	} `yaml:"auth"`
	Storage struct {
		UploadExpiry     time.Duration `yaml:"uploadExpiry"`
		PushWindow       time.Duration `yaml:"pushWindow"`
		MaxManifestBytes int64         `yaml:"maxManifestBytes"`
		ChunkMinLength   int64         `yaml:"chunkMinLength"` // advertised as OCI-Chunk-Min-Length (a hint, not enforced); 0: none
		// Sync (default true) fsyncs blobs and index.json before answering;
		// false trades that durability for speed, as distribution does.
		Sync *bool `yaml:"sync"`
	} `yaml:"storage"`
	GC struct {
		Interval time.Duration `yaml:"interval"`
		Grace    time.Duration `yaml:"grace"`
	} `yaml:"gc"`
	Limits struct {
		ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
		IdleTimeout       time.Duration `yaml:"idleTimeout"`
		StallTimeout      time.Duration `yaml:"stallTimeout"`
		MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
		MaxBlobBytes      int64         `yaml:"maxBlobBytes"`
	} `yaml:"limits"`
	Metrics *bool `yaml:"metrics"`
}

func defaultServeConfig() serveConfig {
	var c serveConfig
	c.Addr = "127.0.0.1:5000"
	c.Root = "./lading-data"
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.GC.Grace = time.Hour
	c.Limits.ReadHeaderTimeout = 10 * time.Second
	c.Limits.IdleTimeout = 2 * time.Minute
	c.Limits.StallTimeout = time.Minute
	c.Limits.MaxHeaderBytes = 64 << 10
	c.Storage.ChunkMinLength = 256 << 10
	return c
}

// loadServeConfig reads a YAML configuration over the defaults. Unknown
// keys are errors, so a misspelt setting is not silently ignored.
func loadServeConfig(path string) (serveConfig, error) {
	c := defaultServeConfig()
	if path == "" {
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(io.LimitReader(f, 1<<20))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w: %v", path, errdef.ErrInvalid, err)
	}
	return c, nil
}

func newServeCmd(opts *rootOptions) *cobra.Command {
	var configFile string
	c := defaultServeConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an OCI registry on an OCI-layout store",
		Long: `serve runs a registry implementing the OCI distribution specification 1.1
over a directory: each repository is an OCI image layout under the root
(ROOT/REPO), readable by any OCI tool, with each blob stored once.

Settings come from --config (YAML) and flags; flags win. The server stops
gracefully on SIGINT or SIGTERM. docs/registry.md describes the
configuration, the policy file and the protocol; docs/registry-gc.md how
garbage is collected while pushes run.`,
		Example: `  lading serve --root ./registry
  lading serve --addr :5000 --htpasswd ./htpasswd --anonymous-pull
  lading serve --config ./registry.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(configFile)
			if err != nil {
				return err
			}
			c.Log.Format = opts.logFormat // the root's --log-format
			applyServeFlags(cmd, &cfg, &c)
			return runServe(cmd, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(&c.Addr, "addr", c.Addr, "address to listen on")
	f.StringVar(&c.Root, "root", c.Root, "directory the repositories are kept in")
	f.BoolVar(&c.ReadOnly, "read-only", false, "refuse every write")
	f.BoolVar(&c.Sparse, "sparse", false, "accept manifests whose layers (and indexes whose children) were not pushed")
	f.StringVar(&c.TLS.Cert, "tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	f.StringVar(&c.TLS.Key, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&c.Auth.Htpasswd, "htpasswd", "", "require basic auth against this htpasswd file (bcrypt entries)")
	f.StringVar(&c.Auth.Policy, "policy", "", "YAML policy granting pull, push and delete per user and repository pattern")
	f.BoolVar(&c.Auth.AnonymousPull, "anonymous-pull", false, "let clients without credentials pull")
	f.BoolVar(&c.Auth.Token.Enabled, "token-auth", false, "issue bearer tokens from /token instead of taking basic auth on every request")
	f.DurationVar(&c.GC.Interval, "gc-interval", 0, "collect garbage this often (0: never)")
	f.DurationVar(&c.GC.Grace, "gc-grace", c.GC.Grace, "keep unreferenced blobs younger than this when collecting")
	f.DurationVar(&c.Storage.UploadExpiry, "upload-expiry", 0, "remove upload sessions idle this long (default 24h)")
	f.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log level: debug, info (access log), warn, error")
	cmd.AddCommand(newServeGCCmd(opts))
	return cmd
}

// applyServeFlags copies the flags set on the command line over cfg.
func applyServeFlags(cmd *cobra.Command, cfg, flags *serveConfig) {
	set := func(name string, fn func()) {
		if cmd.Flags().Changed(name) {
			fn()
		}
	}
	set("addr", func() { cfg.Addr = flags.Addr })
	set("root", func() { cfg.Root = flags.Root })
	set("read-only", func() { cfg.ReadOnly = flags.ReadOnly })
	set("sparse", func() { cfg.Sparse = flags.Sparse })
	set("tls-cert", func() { cfg.TLS.Cert = flags.TLS.Cert })
	set("tls-key", func() { cfg.TLS.Key = flags.TLS.Key })
	set("htpasswd", func() { cfg.Auth.Htpasswd = flags.Auth.Htpasswd })
	set("policy", func() { cfg.Auth.Policy = flags.Auth.Policy })
	set("anonymous-pull", func() { cfg.Auth.AnonymousPull = flags.Auth.AnonymousPull })
	set("token-auth", func() { cfg.Auth.Token.Enabled = flags.Auth.Token.Enabled })
	set("gc-interval", func() { cfg.GC.Interval = flags.GC.Interval })
	set("gc-grace", func() { cfg.GC.Grace = flags.GC.Grace })
	set("upload-expiry", func() { cfg.Storage.UploadExpiry = flags.Storage.UploadExpiry })
	set("log-format", func() { cfg.Log.Format = flags.Log.Format })
	set("log-level", func() { cfg.Log.Level = flags.Log.Level })
}

func serveLogger(w io.Writer, cfg serveConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", cfg.Log.Level, errdef.ErrInvalid)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch cfg.Log.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log format %q: %w: text or json", cfg.Log.Format, errdef.ErrInvalid)
}

// buildAuth turns the configuration into the server's Auth (nil: open).
func buildAuth(cfg serveConfig) (*server.Auth, error) {
	ac := cfg.Auth
	if ac.Htpasswd == "" && ac.Policy == "" && !ac.Token.Enabled {
		if ac.AnonymousPull {
			return nil, nil // open anyway
		}
		return nil, nil
	}
	a := &server.Auth{AnonymousPull: ac.AnonymousPull, TokenTTL: ac.Token.TTL, Realm: ac.Token.Realm, Service: ac.Token.Service}
	if ac.Htpasswd != "" {
		h, err := server.LoadHtpasswd(ac.Htpasswd)
		if err != nil {
			return nil, err
		}
		a.Users = h
	}
	if ac.Policy != "" {
		data, err := os.ReadFile(ac.Policy)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		var p server.Policy
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("policy %s: %w: %v", ac.Policy, errdef.ErrInvalid, err)
		}
		if err := p.Check(); err != nil {
			return nil, fmt.Errorf("policy %s: %w", ac.Policy, err)
		}
		a.Policy = &p
	}
	if ac.Token.Enabled {
		if ac.Token.KeyFile != "" {
			key, err := os.ReadFile(ac.Token.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("token key: %w", err)
			}
			a.TokenKey = key
		} else {
			a.TokenKey = make([]byte, 32)
			_, _ = rand.Read(a.TokenKey)
		}
	}
	return a, nil
}

func runServe(cmd *cobra.Command, cfg serveConfig) error {
	log, err := serveLogger(cmd.ErrOrStderr(), cfg)
	if err != nil {
		return err
	}
	auth, err := buildAuth(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := storage.Open(ctx, cfg.Root, storage.Options{
		ReadOnly: cfg.ReadOnly, MaxManifestBytes: cfg.Storage.MaxManifestBytes,
		UploadExpiry: cfg.Storage.UploadExpiry, PushWindow: cfg.Storage.PushWindow, Logger: log,
		NoSync: cfg.Storage.Sync != nil && !*cfg.Storage.Sync,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	sopts := server.Options{
		Logger: log, ReadOnly: cfg.ReadOnly, Sparse: cfg.Sparse, Auth: auth,
		MaxManifestBytes: cfg.Storage.MaxManifestBytes, ChunkMinLength: cfg.Storage.ChunkMinLength,
		StallTimeout: cfg.Limits.StallTimeout, MaxBlobBytes: cfg.Limits.MaxBlobBytes,
	}
	if cfg.Metrics == nil || *cfg.Metrics {
		sopts.Metrics = server.NewMetrics()
	}
	handler := server.New(store, sopts)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLS.Cert != "" || cfg.TLS.Key != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	if admin, err := serveAdmin(store, log); err != nil {
		// Not fatal: collection still runs on its schedule.
		log.Warn("no admin socket: lading serve gc cannot reach this server", "error", err)
	} else {
		defer admin.Close()
	}
	go janitor(ctx, store, cfg, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "root", store.Root(), "read-only", cfg.ReadOnly)
	fmt.Fprintf(cmd.OutOrStdout(), "listening on %s://%s\n", scheme, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// janitor expires idle upload sessions and, if configured, collects
// garbage on a schedule.
func janitor(ctx context.Context, store *storage.FS, cfg serveConfig, log *slog.Logger) {
	expiry := cfg.Storage.UploadExpiry
	if expiry <= 0 {
		expiry = 24 * time.Hour
	}
	every := min(max(expiry/10, time.Minute), time.Hour)
	expire := time.NewTicker(every)
	defer expire.Stop()
	var gcC <-chan time.Time
	if cfg.GC.Interval > 0 && !cfg.ReadOnly {
		t := time.NewTicker(cfg.GC.Interval)
		defer t.Stop()
		gcC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			if n, err := store.ExpireUploads(ctx); err != nil {
				log.Warn("expiring uploads", "error", err)
			} else if n > 0 {
				log.Info("expired upload sessions", "count", n)
			}
		case <-gcC:
			rep, err := store.GC(ctx, storage.GCOptions{Grace: cfg.GC.Grace})
			if err != nil {
				log.Warn("garbage collection", "error", err)
				continue
			}
			log.Info("garbage collection", "repositories", rep.Repositories, "links", len(rep.Links), "blobs", len(rep.Blobs), "freed", rep.FreedBytes, "uploads", rep.Uploads, "kept", rep.Kept, "problems", len(rep.Problems))
		}
	}
}

// adminSocket is where a running server takes `lading serve gc` requests,
// so that collection goes through its fence.
func adminSocket(root string) string { return filepath.Join(root, ".lading", "admin.sock") }

// serveAdmin listens on the admin socket for garbage collection requests.
func serveAdmin(store *storage.FS, log *slog.Logger) (io.Closer, error) {
	path := adminSocket(store.Root())
	_ = os.Remove(path) // a stale socket: the root's lock is ours
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		grace, err := time.ParseDuration(q.Get("grace"))
		if err != nil {
			http.Error(w, "grace: "+err.Error(), http.StatusBadRequest)
			return
		}
		rep, err := store.GC(r.Context(), storage.GCOptions{Grace: grace, DryRun: q.Get("dry-run") == "true"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("garbage collection (requested)", "links", len(rep.Links), "blobs", len(rep.Blobs), "freed", rep.FreedBytes)
		json.NewEncoder(w).Encode(rep)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

func newServeGCCmd(_ *rootOptions) *cobra.Command {
	var root string
	var grace time.Duration
	var dryRun bool
	var out formatFlag
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unreferenced blobs and expired uploads from a registry root",
		Long: `gc collects garbage in a registry root: blobs no manifest of their
repository leads to, shared copies no repository links, expired upload
sessions. If a server is running on the root, the collection runs inside it,
behind the fence that keeps in-flight pushes safe; otherwise it runs here.
Blobs younger than --grace are kept as a second guard.`,
		Example: `  lading serve gc --root ./registry --grace 0
  lading serve gc --root ./registry --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			var rep *storage.GCReport
			store, err := storage.Open(ctx, root, storage.Options{})
			switch {
			case err == nil:
				defer store.Close()
				rep, err = store.GC(ctx, storage.GCOptions{Grace: grace, DryRun: dryRun})
			case errors.Is(err, storage.ErrLocked):
				rep, err = requestGC(ctx, root, grace, dryRun)
			}
			if err != nil {
				return err
			}
			return out.write(cmd, rep, func(w io.Writer) error {
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, l := range rep.Links {
					fmt.Fprintf(w, "%s %s\n", verb, l)
				}
				for _, b := range rep.Blobs {
					fmt.Fprintf(w, "%s shared blob %s\n", verb, b)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(w, "problem: %s\n", p)
				}
				fmt.Fprintf(w, "%d repositories, %d blob links and %d shared blobs (%d bytes) %s, %d expired uploads, %d unreferenced blobs kept\n",
					rep.Repositories, len(rep.Links), len(rep.Blobs), rep.FreedBytes, verb, rep.Uploads, rep.Kept)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "./lading-data", "registry root")
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "keep unreferenced blobs younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, remove nothing")
	out.register(cmd, true)
	return cmd
}

// requestGC asks the server running on root to collect.
func requestGC(ctx context.Context, root string, grace time.Duration, dryRun bool) (*storage.GCReport, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	sock := adminSocket(abs)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	q := url.Values{"grace": {grace.String()}, "dry-run": {fmt.Sprint(dryRun)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin/gc?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("a server holds %s, but its admin socket does not answer: %w", root, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gc by the server on %s: %s", root, strings.TrimSpace(string(body)))
	}
	var rep storage.GCReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("gc by the server on %s: %w", root, err)
	}
	return &rep, nil
}
