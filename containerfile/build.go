// Package containerfile builds images from Containerfiles (Dockerfiles):
// FROM (images by reference, scratch, earlier stages), multi-stage builds
// with COPY --from, ARG and build arguments, ENV, LABEL, WORKDIR, USER,
// EXPOSE, VOLUME, ENTRYPOINT and CMD in both forms, COPY and ADD of local
// files with --chown and --chmod (ADD extracts local tar archives), SHELL,
// STOPSIGNAL, .containerignore/.dockerignore, and RUN, which runs in the
// image being built with an OCI runtime (package container) and whose
// changes become a layer with whiteouts (mutate.Commit).
//
// Every step makes an image in the store; a build cache keyed by the parent
// image and the instruction with its inputs (the files COPY and ADD read,
// the build arguments RUN sees) lets an unchanged step reuse its image, so
// rebuilding an unchanged Containerfile does no work and gives the same
// digest, and a changed file reruns the build from the first step it
// affects.
//
// The file is parsed with BuildKit's parser; Parse reports anything Build
// does not do, with its line.
package containerfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/lading-oci/lading/mutate"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options configure Build.
type Options struct {
	// Store holds the base images (Resolve puts them there) and receives
	// every layer and image the build writes.
	Store content.IngestStorage
	// File is the parsed Containerfile.
	File *File
	// ContextDir is the build context: what COPY and ADD read.
	ContextDir string
	// BuildArgs are values for ARG instructions (--build-arg).
	BuildArgs map[string]string
	// Target names the stage to build; default the last one.
	Target string
	// HostNetwork lets RUN use the host's network. Without it RUN gets a
	// network namespace of its own with loopback only.
	HostNetwork bool
	// Resolve loads an image named in FROM or COPY --from (oci:DIR:TAG,
	// and whatever else the caller can open), with its blobs copied into
	// Store. Nil: only scratch and stages can be built on.
	Resolve func(ctx context.Context, ref string) (*content.LoadedImage, error)
	// Runtime runs RUN instructions; nil finds one (container.FindRuntime)
	// at the first RUN.
	Runtime *container.Runtime
	// Cache keeps unpacked trees and the build cache (required).
	Cache *container.Cache
	// NoCache runs every step; the results are still recorded.
	NoCache bool
	// RootfsMode says how RUN, COPY and ADD get a writable tree.
	RootfsMode container.RootfsMode
	// Timestamp, when set, is the creation time of every step and clamps
	// the file times of every layer (SOURCE_DATE_EPOCH).
	Timestamp *time.Time
	// Compression of the new layers (gzip when zero).
	Compression layer.Compression
	// Stdout receives a line per step and RUN's output, Stderr RUN's
	// errors; nil discards them. When Stdout is nil, a failing RUN's last
	// output is put in the error instead.
	Stdout, Stderr io.Writer
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// Result is what Build made.
type Result struct {
	// Image is the built image (its blobs are in the store).
	Image *content.LoadedImage
	// Steps is the number of steps of the stages built; Cached how many of
	// them reused an earlier result; Ran how many RUN instructions ran.
	Steps, Cached, Ran int
	// Warnings are remarks about the file and the build arguments.
	Warnings []string
}

// builder is one build.
type builder struct {
	opts     Options
	f        *File
	lex      *shell.Lex
	out      io.Writer
	log      *slog.Logger
	ignore   *patternmatcher.PatternMatcher
	workDir  string // per-build scratch space, in the cache
	stages   []*stage
	meta     map[string]string // ARGs before the first FROM
	usedArgs map[string]bool
	res      Result
	step     int
	total    int
	nstages  int
	runs     int
}

// stage is the state of a stage being built.
type stage struct {
	index int
	name  string
	img   *content.LoadedImage
	args  map[string]string // ARG values in scope
	order []string          // ARG names in declaration order
	shell []string
	tree  *workTree
	built bool
	// layers describes the filesystem of the image whose chain is
	// layersChain, for commit.
	layers      *layer.Tree
	layersChain string
}

// Build builds opts.File and returns the image of its target stage. The
// image is not tagged: the caller does that. On error nothing is tagged
// either; the error names the instruction's line (a *Error), and a failing
// RUN's error gives its exit code.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Store == nil || opts.File == nil || opts.Cache == nil {
		return nil, fmt.Errorf("build: %w: a store, a parsed file and a cache are required", errdef.ErrInvalid)
	}
	b := &builder{
		opts:     opts,
		f:        opts.File,
		lex:      shell.NewLex(opts.File.EscapeToken),
		out:      opts.Stdout,
		log:      opts.Logger,
		meta:     map[string]string{},
		usedArgs: map[string]bool{},
	}
	if b.out == nil {
		b.out = io.Discard
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.res.Warnings = append(b.res.Warnings, opts.File.Warnings...)
	if opts.ContextDir != "" {
		abs, err := filepath.Abs(opts.ContextDir)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("build context %s: %w: not a directory", abs, errdef.ErrInvalid)
		}
		b.opts.ContextDir = abs
		if b.ignore, err = readIgnore(abs); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(filepath.Join(opts.Cache.Dir, "containers"), "build-")
	if err != nil {
		return nil, err
	}
	b.workDir = dir
	defer b.cleanup()
	if err := b.metaArgs(); err != nil {
		return nil, err
	}
	target, err := b.target()
	if err != nil {
		return nil, err
	}
	needed := b.needed(target)
	for i, s := range b.f.Stages {
		b.stages = append(b.stages, &stage{index: i, name: s.Name})
		if needed[i] {
			b.total += 1 + len(s.Commands)
			b.nstages++
		}
	}
	stageNo := 0
	for i := range b.f.Stages {
		if !needed[i] {
			continue
		}
		stageNo++
		if err := b.buildStage(ctx, i, stageNo); err != nil {
			return nil, err
		}
	}
	for k := range opts.BuildArgs {
		if !b.usedArgs[k] {
			b.res.Warnings = append(b.res.Warnings, fmt.Sprintf("build argument %s was not consumed by any ARG", k))
		}
	}
	b.res.Image = b.stages[target].img
	b.res.Ran = b.runs
	return &b.res, nil
}

func (b *builder) cleanup() {
	for _, s := range b.stages {
		if s.tree != nil {
			s.tree.release()
		}
	}
	if b.workDir != "" {
		unpack.RemoveAll(b.workDir)
	}
}

// errAt wraps err as an *Error at the command's line.
func (b *builder) errAt(loc int, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	return &Error{File: b.f.Name, Line: loc, Err: err}
}

// metaArgs evaluates the ARGs before the first FROM.
func (b *builder) metaArgs() error {
	for _, a := range b.f.MetaArgs {
		for _, kv := range a.Args {
			b.usedArgs[kv.Key] = true
			if v, ok := b.opts.BuildArgs[kv.Key]; ok {
				b.meta[kv.Key] = v
				continue
			}
			if kv.Value != nil {
				v, _, err := b.lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(envList(b.meta)))
				if err != nil {
					return b.errAt(line(a.Location()), fmt.Errorf("%w: ARG %s: %v", errdef.ErrInvalid, kv.Key, err))
				}
				b.meta[kv.Key] = v
			}
		}
	}
	return nil
}

// target is the index of the stage to build.
func (b *builder) target() (int, error) {
	if b.opts.Target == "" {
		return len(b.f.Stages) - 1, nil
	}
	for i, s := range b.f.Stages {
		if strings.EqualFold(s.Name, b.opts.Target) {
			return i, nil
		}
	}
	return 0, &Error{File: b.f.Name, Err: fmt.Errorf("%w: target stage %q is not in the file", errdef.ErrNotFound, b.opts.Target)}
}

// stageRef returns the index of the stage that name (a stage name or
// number) refers to among the stages before before, or -1.
func (b *builder) stageRef(name string, before int) int {
	for i := 0; i < before; i++ {
		if b.f.Stages[i].Name != "" && strings.EqualFold(b.f.Stages[i].Name, name) {
			return i
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before {
		return n
	}
	return -1
}

// needed marks the stages the target depends on.
func (b *builder) needed(target int) map[int]bool {
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		s := b.f.Stages[i]
		base, _, _ := b.lex.ProcessWord(s.BaseName, shell.EnvsFromSlice(envList(b.meta)))
		if j := b.stageRef(base, i); j >= 0 {
			visit(j)
		}
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				if j := b.stageRef(cp.From, i); j >= 0 {
					visit(j)
				}
			}
		}
	}
	visit(target)
	return need
}

// progress prints the step line.
func (b *builder) progress(stageNo int, text string) {
	b.step++
	b.res.Steps++
	if b.nstages > 1 {
		fmt.Fprintf(b.out, "[%d/%d] STEP %d/%d: %s\n", stageNo, b.nstages, b.step, b.total, text)
		return
	}
	fmt.Fprintf(b.out, "STEP %d/%d: %s\n", b.step, b.total, text)
}

func (b *builder) buildStage(ctx context.Context, i, stageNo int) error {
	s := b.f.Stages[i]
	st := b.stages[i]
	st.args = map[string]string{}
	b.progress(stageNo, s.SourceCode)
	img, err := b.from(ctx, s, i)
	if err != nil {
		return b.errAt(line(s.Location), err)
	}
	st.img = img
	st.shell = []string{"/bin/sh", "-c"}
	fmt.Fprintf(b.out, "--> %s\n", short(img.Desc.Digest.String()))
	for _, c := range s.Commands {
		b.progress(stageNo, text(c))
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.dispatch(ctx, st, c); err != nil {
			return b.errAt(line(c.Location()), err)
		}
	}
	st.built = true
	return nil
}

func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[i+1 : i+13]
	}
	return d
}

// from loads the stage's base: an earlier stage, scratch, or an image.
func (b *builder) from(ctx context.Context, s instructions.Stage, i int) (*content.LoadedImage, error) {
	base, _, err := b.lex.ProcessWord(s.BaseName, shell.EnvsFromSlice(envList(b.meta)))
	if err != nil {
		return nil, fmt.Errorf("%w: FROM %s: %v", errdef.ErrInvalid, s.BaseName, err)
	}
	if j := b.stageRef(base, i); j >= 0 {
		if !b.stages[j].built {
			return nil, fmt.Errorf("%w: FROM %s: the stage is not built", errdef.ErrInvalid, base)
		}
		return b.stages[j].img, nil
	}
	if base == "scratch" {
		return b.scratch(ctx)
	}
	if b.opts.Resolve == nil {
		return nil, fmt.Errorf("FROM %s: %w: no way to load images", base, errdef.ErrUnsupported)
	}
	img, err := b.opts.Resolve(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", base, err)
	}
	return img, nil
}

// scratch writes (or finds) the empty image for this machine's platform.
func (b *builder) scratch(ctx context.Context) (*content.LoadedImage, error) {
	d := mutate.New(image.DefaultPlatform())
	desc, err := mutate.Write(ctx, b.opts.Store, d)
	if err != nil {
		return nil, err
	}
	return content.LoadImage(ctx, b.opts.Store, desc, nil)
}

// env is what variables in the stage's instructions expand to: its ARGs,
// then the image's environment, which wins.
func (st *stage) env() []string {
	env := envList(st.args)
	for _, e := range st.img.ConfigFile.Config.Env {
		env = image.SetEnv(env, e)
	}
	return env
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// expander expands variables in one word with the stage's environment.
func (b *builder) expander(st *stage) instructions.SingleWordExpander {
	env := shell.EnvsFromSlice(st.env())
	return func(word string) (string, error) {
		out, _, err := b.lex.ProcessWord(word, env)
		return out, err
	}
}

// dispatch runs one instruction.
func (b *builder) dispatch(ctx context.Context, st *stage, c instructions.Command) error {
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(b.expander(st)); err != nil {
			return fmt.Errorf("%w: %v", errdef.ErrInvalid, err)
		}
	}
	switch c := c.(type) {
	case *instructions.ArgCommand:
		b.arg(st, c)
		return nil
	case *instructions.ShellCommand:
		st.shell = slices.Clone(c.Shell)
		fmt.Fprintf(b.out, "--> %s\n", short(st.img.Desc.Digest.String()))
		return nil
	case *instructions.RunCommand:
		return b.layerStep(ctx, st, c, b.runInputs(st, c), func(tree string) error { return b.run(ctx, st, tree, c) })
	case *instructions.CopyCommand:
		return b.copyStep(ctx, st, &c.SourcesAndDest, c.From, c.Chown, c.Chmod, false, c)
	case *instructions.WorkdirCommand:
		return b.workdirStep(ctx, st, c)
	case *instructions.AddCommand:
		return b.copyStep(ctx, st, &c.SourcesAndDest, "", c.Chown, c.Chmod, c.Unpack == nil || *c.Unpack, c)
	}
	return b.configStep(ctx, st, c)
}

// arg brings ARGs into scope: a build argument's value, else the default,
// else the value of the same ARG before the first FROM.
func (b *builder) arg(st *stage, c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		b.usedArgs[kv.Key] = true
		var val *string
		if v, ok := b.opts.BuildArgs[kv.Key]; ok {
			val = &v
		} else if kv.Value != nil {
			val = kv.Value
		} else if v, ok := b.meta[kv.Key]; ok {
			val = &v
		}
		if val != nil {
			if _, ok := st.args[kv.Key]; !ok {
				st.order = append(st.order, kv.Key)
			}
			st.args[kv.Key] = *val
		}
	}
	fmt.Fprintf(b.out, "--> %s\n", short(st.img.Desc.Digest.String()))
}

// created is the time of a new step.
func (b *builder) created() time.Time {
	if b.opts.Timestamp != nil {
		return b.opts.Timestamp.UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// configStep makes the image of an instruction that changes only the
// configuration.
func (b *builder) configStep(ctx context.Context, st *stage, c instructions.Command) error {
	key := b.key(st, c, nil)
	if img := b.cached(ctx, key); img != nil {
		return b.hit(st, img)
	}
	return b.configWrite(ctx, st, c, key)
}

// configWrite writes the image of a configuration step.
func (b *builder) configWrite(ctx context.Context, st *stage, c instructions.Command, key string) error {
	d, err := mutate.From(st.img)
	if err != nil {
		return err
	}
	cfg := &d.ConfigFile.Config
	var changes mutate.ConfigChanges
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			changes.Env = append(changes.Env, kv.Key+"="+kv.Value)
		}
	case *instructions.LabelCommand:
		changes.Labels = map[string]string{}
		for _, kv := range c.Labels {
			changes.Labels[kv.Key] = kv.Value
		}
	case *instructions.WorkdirCommand:
		wd := workdir(cfg.WorkingDir, c.Path)
		changes.WorkingDir = &wd
	case *instructions.UserCommand:
		changes.User = &c.User
	case *instructions.ExposeCommand:
		ex := b.expander(st)
		for _, p := range c.Ports {
			v, err := ex(p)
			if err != nil {
				return fmt.Errorf("%w: EXPOSE %s: %v", errdef.ErrInvalid, p, err)
			}
			changes.ExposedPorts = append(changes.ExposedPorts, strings.Fields(v)...)
		}
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			if v == "" {
				return fmt.Errorf("%w: VOLUME with an empty path", errdef.ErrInvalid)
			}
			changes.Volumes = append(changes.Volumes, path.Clean("/"+v))
		}
	case *instructions.StopSignalCommand:
		changes.StopSignal = &c.Signal
	case *instructions.MaintainerCommand:
		changes.Author = &c.Maintainer
	case *instructions.CmdCommand:
		changes.Cmd = b.commandLine(st, c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		changes.Entrypoint = b.commandLine(st, c.ShellDependantCmdLine)
		if cfg.Cmd != nil && !b.cmdSetInStage(st, c) {
			// A new entrypoint drops the base's command, as docker does.
			changes.Cmd = []string{}
		}
	default:
		return unsupported("instruction %s", strings.ToUpper(c.Name()))
	}
	if err := changes.Apply(d); err != nil {
		return err
	}
	if len(d.ConfigFile.Config.Cmd) == 0 {
		d.ConfigFile.Config.Cmd = nil
	}
	if len(d.ConfigFile.Config.Entrypoint) == 0 {
		d.ConfigFile.Config.Entrypoint = nil
	}
	t := b.created()
	d.ConfigFile.Created = &t
	d.ConfigFile.History = append(d.ConfigFile.History, ocispec.History{
		Created: &t, CreatedBy: text(c), Comment: "lading build", EmptyLayer: true,
	})
	desc, err := mutate.Write(ctx, b.opts.Store, d)
	if err != nil {
		return err
	}
	return b.stepDone(ctx, st, key, desc)
}

// cmdSetInStage reports whether a CMD came earlier in this stage than
// the ENTRYPOINT e (then the entrypoint keeps it).
func (b *builder) cmdSetInStage(st *stage, e instructions.Command) bool {
	for _, c := range b.f.Stages[st.index].Commands {
		if c == e {
			return false
		}
		if _, ok := c.(*instructions.CmdCommand); ok {
			return true
		}
	}
	return false
}

// commandLine is an exec form as it is, or a shell form run by the
// stage's SHELL.
func (b *builder) commandLine(st *stage, cl instructions.ShellDependantCmdLine) []string {
	if cl.PrependShell {
		return append(slices.Clone(st.shell), strings.Join(cl.CmdLine, " "))
	}
	if cl.CmdLine == nil {
		return []string{}
	}
	return slices.Clone(cl.CmdLine)
}

// layerStep makes the image of an instruction that changes files: act
// changes the stage's working tree, which becomes a new layer.
func (b *builder) layerStep(ctx context.Context, st *stage, c instructions.Command, inputs []string, act func(tree string) error) error {
	key := b.key(st, c, inputs)
	if img := b.cached(ctx, key); img != nil {
		return b.hit(st, img)
	}
	return b.layerWrite(ctx, st, c, key, act, mutate.ConfigChanges{})
}

// workdir is the working directory a WORKDIR path gives after cur.
func workdir(cur, p string) string {
	if !path.IsAbs(p) {
		p = path.Join("/", cur, p)
	}
	return path.Clean(p)
}

// workdirStep sets the working directory and, as docker and buildah do,
// makes it when the image does not have it (a layer with the directory).
func (b *builder) workdirStep(ctx context.Context, st *stage, c *instructions.WorkdirCommand) error {
	key := b.key(st, c, nil)
	if img := b.cached(ctx, key); img != nil {
		return b.hit(st, img)
	}
	wd := workdir(st.img.ConfigFile.Config.WorkingDir, c.Path)
	exists, err := b.hasDir(ctx, st, wd)
	if err != nil {
		return err
	}
	if exists {
		return b.configWrite(ctx, st, c, key)
	}
	return b.layerWrite(ctx, st, c, key, func(tree string) error {
		return mkdirIn(tree, wd, 0, 0)
	}, mutate.ConfigChanges{WorkingDir: &wd})
}

// hasDir reports whether the stage's image has the directory dir: in its
// working tree when that is current, else in its cached tree.
func (b *builder) hasDir(ctx context.Context, st *stage, dir string) (bool, error) {
	root := ""
	if st.tree != nil && st.tree.chain == container.ChainKey(st.img.ConfigFile.RootFS.DiffIDs) {
		root = st.tree.rootfs.Path
	} else {
		var err error
		if root, err = b.opts.Cache.Rootfs(ctx, b.opts.Store, st.img); err != nil {
			return false, err
		}
	}
	p, err := inroot.Resolve(root, dir)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir(), nil
}

// layerWrite runs act on the stage's working tree and commits the change
// as a layer, with changes made to the configuration.
func (b *builder) layerWrite(ctx context.Context, st *stage, c instructions.Command, key string, act func(tree string) error, changes mutate.ConfigChanges) error {
	tree, err := b.tree(ctx, st)
	if err != nil {
		return err
	}
	if err := act(tree.rootfs.Path); err != nil {
		// The tree no longer matches any image.
		tree.chain = ""
		return err
	}
	desc, err := b.commit(ctx, st, tree.rootfs.Path, text(c), changes)
	if err != nil {
		tree.chain = ""
		return err
	}
	if err := b.stepDone(ctx, st, key, desc); err != nil {
		return err
	}
	tree.chain = container.ChainKey(st.img.ConfigFile.RootFS.DiffIDs)
	return nil
}

// stepDone loads the step's new image, records it in the build cache and
// prints it.
func (b *builder) stepDone(ctx context.Context, st *stage, key string, desc ocispec.Descriptor) error {
	img, err := content.LoadImage(ctx, b.opts.Store, desc, nil)
	if err != nil {
		return err
	}
	st.img = img
	b.record(key, desc)
	fmt.Fprintf(b.out, "--> %s\n", short(desc.Digest.String()))
	return nil
}

// hit takes a cached step's image.
func (b *builder) hit(st *stage, img *content.LoadedImage) error {
	st.img = img
	b.res.Cached++
	fmt.Fprintf(b.out, "--> Using cache %s\n", img.Desc.Digest)
	return nil
}

// keyFor is the JSON form of an instruction after expansion: its
// exported fields, which hold everything it does.
func keyFor(c instructions.Command) string {
	data, err := json.Marshal(c)
	if err != nil {
		return text(c)
	}
	return c.Name() + " " + string(data)
}

// text is an instruction as the file wrote it.
func text(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(c.Name())
}

// commit records the changes made to dir, a tree that held st.img's
// layers, as one new layer with whiteouts on top of st.img, as
// mutate.Commit does; but the description of st.img's filesystem it
// compares with is kept from step to step and advanced by the new layer,
// rather than read from every layer again at each step.
func (b *builder) commit(ctx context.Context, st *stage, dir, createdBy string, changes mutate.ConfigChanges) (ocispec.Descriptor, error) {
	chain := container.ChainKey(st.img.ConfigFile.RootFS.DiffIDs)
	if st.layers == nil || st.layersChain != chain {
		t, err := mutate.Tree(ctx, b.opts.Store, st.img)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		st.layers, st.layersChain = t, chain
	}
	comp := b.opts.Compression
	if comp == 0 {
		comp = layer.Gzip
	}
	w, err := b.opts.Store.Ingest(ctx, "")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	res, err := layer.CreateDiff(ctx, st.layers, dir, w, layer.DiffOptions{
		Options:  layer.Options{Compression: comp, Timestamp: b.opts.Timestamp},
		Rootless: os.Geteuid() != 0,
	})
	empty := err == nil && res.UncompressedSize <= emptyTarSize
	if err == nil && !empty {
		_, err = w.Commit(ctx, res.Descriptor.Size, res.Descriptor.Digest)
	}
	if err != nil || empty {
		_ = w.Abort(ctx)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("store layer: %w", err)
		}
	} else {
		_ = w.Close()
	}
	d, err := mutate.From(st.img)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	t := b.created()
	h := ocispec.History{Created: &t, CreatedBy: createdBy, Comment: "lading build"}
	if empty {
		// No changes: no layer, as docker and buildah do.
		h.EmptyLayer = true
		d.ConfigFile.History = append(d.ConfigFile.History, h)
	} else {
		d.AddLayer(res.Descriptor, res.DiffID, h)
	}
	changes.Created = &t
	if err := changes.Apply(d); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := mutate.Write(ctx, b.opts.Store, d)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if empty {
		return desc, nil
	}
	// Advance the description by the new layer, read back verified.
	st.layersChain = ""
	if err := mutate.ApplyLayer(ctx, b.opts.Store, st.layers, res.Descriptor); err != nil {
		st.layers = nil
		b.log.Debug("layer description dropped", "err", err)
	} else {
		st.layersChain = container.ChainKey(d.ConfigFile.RootFS.DiffIDs)
	}
	return desc, nil
}

// emptyTarSize is the size of a tar stream with no entries: its two zero
// blocks.
const emptyTarSize = 1024
