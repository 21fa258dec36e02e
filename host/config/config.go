package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/internal/suggest"
	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of the optional blocks.
const (
	DefaultMaxRecords = 10000
	DefaultMaxBytes   = 0 // no limit
	DefaultMaxWait    = time.Second
	DefaultStore      = "dir"
	// StorePostgres is the checkpoint store kept in PostgreSQL tables.
	StorePostgres = "postgres"
	// DefaultSchema is the schema of a "postgres" store when none is given.
	DefaultSchema = "public"
	// MaxParallelism bounds a pipeline's parallelism attribute.
	MaxParallelism = 1024
)

// Lookup returns the spec of the plugin of the given kind and name. Its error
// means the plugin is unknown (or cannot be started); the error's message is
// reported in a diagnostic at the block's label.
type Lookup func(kind sdk.Kind, name string) (sdk.Spec, error)

// File is a parsed pipeline file.
type File struct {
	// Path is the path the file was read from, as given.
	Path string
	// PluginDir is the top-level plugin_dir as written, "" when the file does not
	// set it.
	PluginDir string
	// HTTP is the top-level http block, nil when the file has none.
	HTTP *HTTP
	// Pipelines are in file order. Parse and Load return them only when they
	// report no errors.
	Pipelines []*Pipeline

	files map[string]*hcl.File  // for Format; secret literals masked after Load
	remap func(hcl.Pos) hcl.Pos // rewritten source → file as written (oneline.go)
}

// HTTP is the top-level http block: where `connectd run` serves its metrics,
// health checks and API.
type HTTP struct {
	// Addr is host:port (checked to have that form).
	Addr string
	// Token, when not "", is the bearer token mutating calls need. It may
	// come from env() and is then secret: never print it.
	Token string
	// Range is the block's definition range.
	Range hcl.Range
}

// Pipeline is one pipeline block. One returned by Load is complete and valid:
// its plugins' values pass sdk.NewConfig and the plugins can keep Delivery.
type Pipeline struct {
	Name     string
	Delivery Delivery
	Source   Plugin
	// Transforms run in order between the source's read and the sink's
	// write; none: the host passes records through without decoding them.
	Transforms []Transform
	Sink       Plugin
	// OnRecordError is what becomes of a record a transform, a processor
	// or the sink rejects: OnErrorFail (the default), OnErrorSkip or
	// OnErrorDeadLetter.
	OnRecordError string
	// DeadLetter is the sink that receives rejected records when
	// OnRecordError is OnErrorDeadLetter (a `dead_letter "<sink>"` block);
	// nil otherwise. Its Kind is sdk.KindSink.
	DeadLetter *Plugin
	Batch      Batch
	Checkpoint Checkpoint
	// Timeouts are the deadlines of plugin calls set by the pipeline's
	// timeouts block; see Timeout for every phase's deadline.
	Timeouts Timeouts
	// Restart is the pipeline's restart policy (the restart block).
	Restart Restart
	// Parallelism is how many tasks the pipeline runs as (the parallelism
	// attribute, >= 1, default 1): Tasks splits it into that many units,
	// each reading its share of the source's partitions. Above 1 the source
	// must be sdk.CapSplittable (Load checks it).
	Parallelism int
	// Range is the pipeline block's definition range (`pipeline "name"`).
	Range hcl.Range

	// Group is the name of the pipeline block a task belongs to; Name is the
	// task's own name, equal to Group when the pipeline runs as one task.
	// Set by Tasks.
	Group string
	// Task is this task's index in [0, Tasks); Tasks is how many tasks the
	// pipeline runs as (its parallelism, 1 by default). Set by Tasks.
	Task, Tasks int

	deliveryRange    hcl.Range // the delivery attribute, for delivery diagnostics
	parallelismRange hcl.Range // the parallelism attribute, for its diagnostics
}

// What becomes of a rejected record (Pipeline.OnRecordError).
const (
	// OnErrorFail fails the run at the first rejected record, before the
	// batch commits: nothing is lost, the pipeline stops until the cause is
	// fixed.
	OnErrorFail = "fail"
	// OnErrorSkip logs and counts rejected records and commits without them.
	OnErrorSkip = "skip"
	// OnErrorDeadLetter writes rejected records to the DeadLetter sink
	// before the batch commits.
	OnErrorDeadLetter = "dead_letter"
)

var onErrorNames = []string{OnErrorFail, OnErrorSkip, OnErrorDeadLetter}

// Transform is one `transform "<name>"` block of a pipeline: a built-in
// transform of host/transform (Step) or a processor plugin (Plugin).
type Transform struct {
	// Name is the block's label.
	Name string
	// Step is the compiled built-in; nil for a processor plugin.
	Step transform.Step
	// Plugin is the processor plugin's block (Kind sdk.KindProcessor); nil
	// for a built-in.
	Plugin *Plugin
	// Range is the block's definition range (`transform "name"`).
	Range hcl.Range

	body    hcl.Body    // a built-in's block body, for NewStep
	secrets []hcl.Range // secret literals written in the block (mask's key), masked by Load
}

// NewStep compiles the built-in again into a Step of its own: a Step is for
// one goroutine at a time, so the host gives each goroutine that transforms
// records its own. It fails only for a processor plugin (no Step), since
// the block compiled once already.
func (t Transform) NewStep() (transform.Step, error) {
	if t.Step == nil || t.body == nil {
		return nil, fmt.Errorf("transform %q is not a built-in", t.Name)
	}
	step, diags := transform.Decode(t.Name, t.body, evalContext())
	if diags.HasErrors() {
		return nil, diags
	}
	return step, nil
}

// Stage names the transform for logs and dead letters: `transform 2 "set"`,
// n counting from 1 in the pipeline's order.
func (t Transform) Stage(n int) string { return fmt.Sprintf("transform %d %q", n, t.Name) }

// Processors returns the processor plugins among the pipeline's
// transforms, in order.
func (p *Pipeline) Processors() []*Plugin {
	var out []*Plugin
	for i := range p.Transforms {
		if pl := p.Transforms[i].Plugin; pl != nil {
			out = append(out, pl)
		}
	}
	return out
}

// plugins returns every plugin block of the pipeline: source, processors,
// sink, dead-letter sink.
func (p *Pipeline) plugins() []*Plugin {
	out := append([]*Plugin{&p.Source}, p.Processors()...)
	out = append(out, &p.Sink)
	if p.DeadLetter != nil {
		out = append(out, p.DeadLetter)
	}
	return out
}

// Batch is how the host cuts batches. Defaults are filled in.
type Batch struct {
	MaxRecords int           // > 0
	MaxBytes   int64         // >= 0; 0 means no limit
	MaxWait    time.Duration // > 0
	// ReadAhead reads batch N+1 while batch N is written and committed
	// (read_ahead = true); the host then holds up to two batches.
	ReadAhead bool
}

// Checkpoint is where the host keeps the pipeline's offset and commit logs.
// Defaults are filled in.
type Checkpoint struct {
	// Store is the kind of store: "dir" (a local directory) or "postgres"
	// (tables in a PostgreSQL database).
	Store string
	// Dir is the directory of a "dir" store, as written (default
	// ".connectd/<pipeline name>"); "" for other stores.
	Dir string
	// URL is the connection URL (or key=value DSN) of a "postgres" store. It
	// may hold a password: print Where, never URL.
	URL string
	// Schema is the PostgreSQL schema that holds a "postgres" store's tables
	// (default "public"); "" for other stores.
	Schema string
}

// Where describes the checkpoint for people, without any password: the
// directory, or the database and schema.
func (c Checkpoint) Where() string {
	if c.Store == StorePostgres {
		u := RedactURL(c.URL)
		if !strings.Contains(u, "://") {
			u = fmt.Sprintf("postgres %q", u) // a key=value DSN
		}
		return fmt.Sprintf("%s (schema %q)", u, c.Schema)
	}
	return c.Dir
}

// passwordParam matches password=... in a key=value DSN (quoted or not).
var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactURL returns a database URL or key=value DSN with its password
// replaced by "xxxxx", for messages and logs.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordParam.ReplaceAllString(s, "${1}xxxxx")
}

// Pipeline returns the pipeline named name; the error lists the names the file
// has.
func (f *File) Pipeline(name string) (*Pipeline, error) {
	names := make([]string, 0, len(f.Pipelines))
	for _, p := range f.Pipelines {
		if p.Name == name {
			return p, nil
		}
		names = append(names, fmt.Sprintf("%q", p.Name))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no pipeline %q in %s: it has no pipelines", name, f.Path)
	}
	return nil, fmt.Errorf("no pipeline %q in %s; it has %s", name, f.Path, strings.Join(names, ", "))
}

// Parse reads path and checks its structure without plugin specs: it is how
// the host learns PluginDir and which plugins a file needs before starting them.
// The pipelines it returns have everything but their plugins' Spec, Values and
// Secret. The File is never nil (Format and Err need it), but holds Pipelines
// only when the diagnostics have no errors.
func Parse(path string) (*File, hcl.Diagnostics) {
	f, diags := parse(path)
	if diags.HasErrors() {
		f.Pipelines = nil
	}
	return f, sortDiags(f.fix(diags))
}

// Load parses path and validates every pipeline against the specs lookup
// returns (each plugin is looked up once): unknown, mistyped and missing
// parameters, then the delivery guarantee. The File is never nil, but holds
// Pipelines only when the diagnostics have no errors; then each of them is
// complete and valid. Warnings (a secret written in the file) may come with a
// valid File.
func Load(path string, lookup Lookup) (*File, hcl.Diagnostics) {
	f, diags := parse(path)
	if diags.HasErrors() {
		f.Pipelines = nil
		return f, sortDiags(f.fix(diags))
	}
	type key struct {
		kind sdk.Kind
		name string
	}
	type result struct {
		spec sdk.Spec
		err  error
	}
	cache := map[key]result{}
	find := func(kind sdk.Kind, name string) (sdk.Spec, error) {
		k := key{kind, name}
		r, ok := cache[k]
		if !ok {
			r.spec, r.err = lookup(kind, name)
			cache[k] = r
		}
		return r.spec, r.err
	}
	var masks []hcl.Range
	for _, p := range f.Pipelines {
		var pd hcl.Diagnostics
		for _, pl := range p.plugins() {
			d, m := pl.load(find, p.Name)
			pd = append(pd, d...)
			masks = append(masks, m...)
		}
		if !pd.HasErrors() && p.Parallelism > 1 && !slices.Contains(p.Source.Spec.CapabilitiesFor(p.Source.Values), sdk.CapSplittable) {
			pd = append(pd, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Parallelism not possible with this source",
				Detail: fmt.Sprintf("parallelism = %d splits the source's partitions among %d tasks, but %s does not declare capability %q (it cannot read only a task's share of its partitions); remove parallelism or set it to 1.",
					p.Parallelism, p.Parallelism, p.Source.title(), sdk.CapSplittable),
				Subject: p.parallelismRange.Ptr(),
			})
		}
		if !pd.HasErrors() {
			for _, problem := range checkDelivery(p.Delivery, &p.Source, &p.Sink, p.Processors(), p.DeadLetter) {
				pd = append(pd, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Delivery guarantee not possible with these plugins",
					Detail:   problem + ".",
					Subject:  p.deliveryRange.Ptr(),
				})
			}
		}
		diags = append(diags, pd...)
	}
	f.mask(masks)
	if diags.HasErrors() {
		f.Pipelines = nil
	}
	return f, sortDiags(f.fix(diags))
}

var (
	topSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "plugin_dir"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "pipeline", LabelNames: []string{"name"}}, {Type: "http"}},
	}
	httpSchema     = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "addr", Required: true}, {Name: "token"}}}
	pipelineSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "delivery"}, {Name: "on_record_error"}, {Name: "parallelism"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "source", LabelNames: []string{"name"}},
			{Type: "transform", LabelNames: []string{"name"}},
			{Type: "sink", LabelNames: []string{"name"}},
			{Type: "dead_letter", LabelNames: []string{"sink"}},
			{Type: "batch"},
			{Type: "checkpoint"},
			{Type: "timeouts"},
			{Type: "restart"},
		},
	}
	batchSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "max_records"}, {Name: "max_bytes"}, {Name: "max_wait"}, {Name: "read_ahead"}},
	}
	storeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "store"}}}
	// checkpointSchemas has the attributes of a checkpoint block per store; a
	// new store (postgres) adds an entry here and its fields to Checkpoint.
	checkpointSchemas = map[string]*hcl.BodySchema{
		"dir":         {Attributes: []hcl.AttributeSchema{{Name: "store"}, {Name: "dir"}}},
		StorePostgres: {Attributes: []hcl.AttributeSchema{{Name: "store"}, {Name: "url", Required: true}, {Name: "schema"}}},
	}
	validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

func parse(path string) (*File, hcl.Diagnostics) {
	f := &File{Path: path}
	hf, files, diags, remap := parseFile(path)
	f.files, f.remap = files, remap
	for _, d := range diags {
		if d.Subject == nil { // cannot read the file: point at it anyway
			start := hcl.Pos{Line: 1, Column: 1}
			d.Subject = &hcl.Range{Filename: path, Start: start, End: start}
		}
	}
	if diags.HasErrors() || hf == nil {
		return f, diags
	}
	content, d := bodyContent(hf.Body, topSchema)
	diags = append(diags, d...)
	if a := content.Attributes["plugin_dir"]; a != nil {
		s, d := evalString(a, true)
		diags = append(diags, d...)
		f.PluginDir = s
	}
	seen := map[string]*Pipeline{}
	pipelines := 0
	for _, b := range content.Blocks {
		if b.Type == "http" {
			diags = append(diags, f.parseHTTP(b)...)
			continue
		}
		pipelines++
		p, d := parsePipeline(b)
		diags = append(diags, d...)
		if p == nil {
			continue
		}
		for _, t := range p.Transforms {
			f.mask(t.secrets)
		}
		if first := seen[p.Name]; first != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate pipeline name",
				Detail:   fmt.Sprintf("A pipeline named %q is already defined at %s; pipeline names must be unique in a file.", p.Name, posString(first.Range)),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		seen[p.Name] = p
		f.Pipelines = append(f.Pipelines, p)
	}
	diags = append(diags, checkTaskNames(f.Pipelines)...)
	if pipelines == 0 && !diags.HasErrors() {
		start := hcl.Pos{Line: 1, Column: 1, Byte: 0}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No pipeline",
			Detail:   `The file defines no pipeline; add a block such as pipeline "demo" { ... }.`,
			Subject:  &hcl.Range{Filename: path, Start: start, End: start},
		})
	}
	return f, diags
}

// parseHTTP reads the http block into f.HTTP; a second one is an error.
func (f *File) parseHTTP(b *hcl.Block) hcl.Diagnostics {
	if f.HTTP != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Duplicate http block",
			Detail:   fmt.Sprintf("The file already has an http block at %s; a file has at most one.", posString(f.HTTP.Range)),
			Subject:  b.DefRange.Ptr(),
		}}
	}
	h := &HTTP{Range: b.DefRange}
	content, diags := bodyContent(b.Body, httpSchema)
	if a := content.Attributes["addr"]; a != nil {
		s, d := evalString(a, true)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if _, _, err := net.SplitHostPort(s); err != nil {
				diags = append(diags, badValue(a, fmt.Sprintf("addr takes host:port, such as \"127.0.0.1:8083\"; got %q (%v).", s, err)))
			}
			h.Addr = s
		}
	}
	if a := content.Attributes["token"]; a != nil {
		s, d := evalString(a, true)
		diags = append(diags, d...)
		h.Token = s
	}
	f.HTTP = h
	return diags
}

func parsePipeline(b *hcl.Block) (*Pipeline, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	name := b.Labels[0]
	if !validName.MatchString(name) || name == "." || name == ".." {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid pipeline name",
			Detail:   fmt.Sprintf("Pipeline name %q must be usable as a directory name: letters, digits, '_', '.' and '-' only (and not \".\" or \"..\").", name),
			Subject:  b.LabelRanges[0].Ptr(),
		})
	}
	p := &Pipeline{
		Name:          name,
		OnRecordError: OnErrorFail,
		Range:         b.DefRange,
		Batch:         Batch{MaxRecords: DefaultMaxRecords, MaxBytes: DefaultMaxBytes, MaxWait: DefaultMaxWait},
		Checkpoint:    Checkpoint{Store: DefaultStore, Dir: filepath.Join(".connectd", name)},
		Restart:       Restart{Attempts: DefaultRestartAttempts, Backoff: DefaultRestartBackoff, MaxBackoff: DefaultRestartMaxBackoff},
		Parallelism:   1,
	}
	content, d := bodyContent(b.Body, pipelineSchema)
	diags = append(diags, d...)

	if a := content.Attributes["delivery"]; a != nil {
		p.deliveryRange = a.Expr.Range()
		s, d := evalString(a, false)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if dl := Delivery(s); dl.valid() {
				p.Delivery = dl
			} else {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid delivery",
					Detail:   fmt.Sprintf("delivery must be one of %s; got %q.%s", deliveryList(), s, didYouMean(s, deliveryNames())),
					Subject:  a.Expr.Range().Ptr(),
					Context:  a.Range.Ptr(),
				})
			}
		}
	} else {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing delivery",
			Detail:   fmt.Sprintf("Pipeline %q has no delivery; set delivery = one of %s.", name, deliveryList()),
			Subject:  b.DefRange.Ptr(),
		})
	}

	var onErrorRange *hcl.Range
	if a := content.Attributes["on_record_error"]; a != nil {
		onErrorRange = a.Expr.Range().Ptr()
		s, d := evalString(a, false)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if slices.Contains(onErrorNames, s) {
				p.OnRecordError = s
			} else {
				diags = append(diags, badValue(a, fmt.Sprintf("on_record_error must be one of %s; got %q.%s", quoteList(onErrorNames), s, didYouMean(s, onErrorNames))))
			}
		}
	}

	if a := content.Attributes["parallelism"]; a != nil {
		p.parallelismRange = a.Expr.Range()
		n, d := evalInt(a, 1)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if n > MaxParallelism {
				diags = append(diags, badValue(a, fmt.Sprintf("parallelism must be <= %d; got %d.", MaxParallelism, n)))
			} else {
				p.Parallelism = int(n)
			}
		}
	}

	var sources, sinks, deadLetters, batches, checkpoints, timeouts, restarts []*hcl.Block
	for _, c := range content.Blocks {
		switch c.Type {
		case "source":
			sources = append(sources, c)
		case "transform":
			t, d := parseTransform(c)
			diags = append(diags, d...)
			p.Transforms = append(p.Transforms, t)
		case "sink":
			sinks = append(sinks, c)
		case "dead_letter":
			deadLetters = append(deadLetters, c)
		case "batch":
			batches = append(batches, c)
		case "checkpoint":
			checkpoints = append(checkpoints, c)
		case "timeouts":
			timeouts = append(timeouts, c)
		case "restart":
			restarts = append(restarts, c)
		}
	}
	for _, kind := range []sdk.Kind{sdk.KindSource, sdk.KindSink} {
		blocks, dst := sources, &p.Source
		if kind == sdk.KindSink {
			blocks, dst = sinks, &p.Sink
		}
		diags = append(diags, exactlyOne(b, string(kind), blocks, true)...)
		if len(blocks) > 0 {
			pl, d := parsePlugin(kind, blocks[0])
			diags = append(diags, d...)
			*dst = pl
		}
	}
	diags = append(diags, exactlyOne(b, "dead_letter", deadLetters, false)...)
	if len(deadLetters) > 0 {
		pl, d := parsePlugin(sdk.KindSink, deadLetters[0])
		diags = append(diags, d...)
		p.DeadLetter = &pl
	}
	switch {
	case p.OnRecordError == OnErrorDeadLetter && p.DeadLetter == nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing dead_letter block",
			Detail:   fmt.Sprintf("Pipeline %q has on_record_error = %q but no dead_letter block; add one that names the sink rejected records go to, such as dead_letter \"file\" { dir = \"rejected\" }.", name, OnErrorDeadLetter),
			Subject:  onErrorRange,
		})
	case p.OnRecordError != OnErrorDeadLetter && p.DeadLetter != nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unused dead_letter block",
			Detail:   fmt.Sprintf("Pipeline %q has a dead_letter block, but on_record_error is %q: set on_record_error = %q to send rejected records there, or remove the block.", name, p.OnRecordError, OnErrorDeadLetter),
			Subject:  p.DeadLetter.Range.Ptr(),
		})
	}
	diags = append(diags, exactlyOne(b, "batch", batches, false)...)
	if len(batches) > 0 {
		diags = append(diags, parseBatch(batches[0], &p.Batch)...)
	}
	diags = append(diags, exactlyOne(b, "checkpoint", checkpoints, false)...)
	if len(checkpoints) > 0 {
		diags = append(diags, parseCheckpoint(checkpoints[0], &p.Checkpoint)...)
	}
	diags = append(diags, exactlyOne(b, "timeouts", timeouts, false)...)
	if len(timeouts) > 0 {
		t, d := parseTimeouts(timeouts[0])
		diags = append(diags, d...)
		p.Timeouts = t
	}
	diags = append(diags, exactlyOne(b, "restart", restarts, false)...)
	if len(restarts) > 0 {
		diags = append(diags, parseRestart(restarts[0], &p.Restart)...)
	}
	return p, diags
}

// parseTransform reads a transform block: a built-in is compiled now (its
// expressions' errors point into them); any other name is a processor
// plugin, looked up by Load.
func parseTransform(b *hcl.Block) (Transform, hcl.Diagnostics) {
	t := Transform{Name: b.Labels[0], Range: b.DefRange, body: b.Body}
	if transform.Builtin(t.Name) {
		step, diags := transform.Decode(t.Name, b.Body, evalContext())
		t.Step = step
		// mask's key is secret: written as a literal, it is a warning, and
		// it never shows in a diagnostic's snippet.
		if sb, ok := plainBody(b.Body); ok && t.Name == "mask" {
			if a := sb.Attributes["key"]; a != nil {
				if _, fromEnv, d := evaluate(a.AsHCLAttribute()); !d.HasErrors() && !fromEnv {
					t.secrets = append(t.secrets, a.Expr.Range())
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagWarning,
						Summary:  "Secret written in the pipeline file",
						Detail:   `The key of transform "mask" is secret; give it with env("NAME") instead of writing it in the file.`,
						Subject:  a.Expr.Range().Ptr(),
						Context:  a.SrcRange.Ptr(),
					})
				}
			}
		}
		return t, diags
	}
	pl, diags := parsePlugin(sdk.KindProcessor, b)
	t.Plugin = &pl
	return t, diags
}

// exactlyOne reports repeated blocks of one type and, when required, a
// missing one.
func exactlyOne(pipeline *hcl.Block, typ string, blocks []*hcl.Block, required bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if len(blocks) == 0 && required {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Missing %s block", typ),
			Detail:   fmt.Sprintf("Pipeline %q needs exactly one %s block, such as %s \"file\" { ... }.", pipeline.Labels[0], typ, typ),
			Subject:  pipeline.DefRange.Ptr(),
		})
	}
	for _, extra := range blocks[min(1, len(blocks)):] {
		what := "exactly one"
		if !required {
			what = "at most one"
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Duplicate %s block", typ),
			Detail:   fmt.Sprintf("Pipeline %q already has a %s block at %s; a pipeline has %s.", pipeline.Labels[0], typ, posString(blocks[0].DefRange), what),
			Subject:  extra.DefRange.Ptr(),
		})
	}
	return diags
}

func parseBatch(b *hcl.Block, out *Batch) hcl.Diagnostics {
	content, diags := bodyContent(b.Body, batchSchema)
	if a := content.Attributes["max_records"]; a != nil {
		n, d := evalInt(a, 1)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if int64(int(n)) != n {
				diags = append(diags, badValue(a, "max_records is too large"))
			} else {
				out.MaxRecords = int(n)
			}
		}
	}
	if a := content.Attributes["max_bytes"]; a != nil {
		n, d := evalInt(a, 0)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out.MaxBytes = n
		}
	}
	if a := content.Attributes["max_wait"]; a != nil {
		v, secret, d := evaluate(a)
		diags = append(diags, d...)
		if !d.HasErrors() && !v.IsNull() {
			g, problem := toGo(sdk.TypeDuration, v, secret)
			if problem != "" {
				diags = append(diags, badValue(a, fmt.Sprintf("max_wait takes %s; %s.", typeDesc(sdk.TypeDuration), problem)))
			} else if w, _ := time.ParseDuration(g.(string)); w <= 0 {
				diags = append(diags, badValue(a, fmt.Sprintf("max_wait must be > 0; got %s.", describe(v, secret))))
			} else {
				out.MaxWait = w
			}
		}
	}
	if a := content.Attributes["read_ahead"]; a != nil {
		v, secret, d := evaluate(a)
		diags = append(diags, d...)
		if !d.HasErrors() && !v.IsNull() {
			g, problem := toGo(sdk.TypeBool, v, secret)
			if problem != "" {
				diags = append(diags, badValue(a, fmt.Sprintf("read_ahead takes %s; %s.", typeDesc(sdk.TypeBool), problem)))
			} else {
				out.ReadAhead = g.(bool)
			}
		}
	}
	return diags
}

func parseCheckpoint(b *hcl.Block, out *Checkpoint) hcl.Diagnostics {
	pc, _, diags := b.Body.PartialContent(storeSchema)
	if a := pc.Attributes["store"]; a != nil {
		s, d := evalString(a, true)
		diags = append(diags, d...)
		if d.HasErrors() {
			return diags
		}
		if _, ok := checkpointSchemas[s]; !ok {
			return append(diags, badValue(a, fmt.Sprintf("Unknown checkpoint store %q; known stores: %s.%s", s, quoteList(storeNames()), didYouMean(s, storeNames()))))
		}
		out.Store = s
	}
	content, d := bodyContent(b.Body, checkpointSchemas[out.Store])
	diags = append(diags, d...)
	if a := content.Attributes["dir"]; a != nil {
		s, d := evalString(a, true)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out.Dir = s
		}
	}
	if out.Store == StorePostgres {
		out.Dir, out.Schema = "", DefaultSchema
		for _, f := range []struct {
			name string
			dst  *string
		}{{"url", &out.URL}, {"schema", &out.Schema}} {
			if a := content.Attributes[f.name]; a != nil {
				s, d := evalString(a, true)
				diags = append(diags, d...)
				if !d.HasErrors() {
					*f.dst = s
				}
			}
		}
	}
	return diags
}

func storeNames() []string {
	names := make([]string, 0, len(checkpointSchemas))
	for n := range checkpointSchemas {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// evalString evaluates a string attribute; nonEmpty rejects "".
func evalString(a *hcl.Attribute, nonEmpty bool) (string, hcl.Diagnostics) {
	v, secret, diags := evaluate(a)
	if diags.HasErrors() {
		return "", diags
	}
	if v.IsNull() {
		return "", append(diags, badValue(a, fmt.Sprintf("%s must not be null.", a.Name)))
	}
	if v.Type() != cty.String {
		return "", append(diags, badValue(a, fmt.Sprintf("%s takes a string; got %s.", a.Name, describe(v, secret))))
	}
	s := v.AsString()
	if nonEmpty && s == "" {
		return "", append(diags, badValue(a, fmt.Sprintf("%s must not be empty.", a.Name)))
	}
	return s, diags
}

// evalInt evaluates a whole-number attribute that must be >= minimum.
func evalInt(a *hcl.Attribute, minimum int64) (int64, hcl.Diagnostics) {
	v, secret, diags := evaluate(a)
	if diags.HasErrors() {
		return 0, diags
	}
	if v.IsNull() {
		return 0, append(diags, badValue(a, fmt.Sprintf("%s must not be null.", a.Name)))
	}
	g, problem := toGo(sdk.TypeInt, v, secret)
	if problem != "" {
		return 0, append(diags, badValue(a, fmt.Sprintf("%s takes %s; %s.", a.Name, typeDesc(sdk.TypeInt), problem)))
	}
	n := g.(int64)
	if n < minimum {
		return 0, append(diags, badValue(a, fmt.Sprintf("%s must be >= %d; got %s.", a.Name, minimum, describe(v, secret))))
	}
	return n, diags
}

func badValue(a *hcl.Attribute, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid value for " + a.Name,
		Detail:   detail,
		Subject:  a.Expr.Range().Ptr(),
		Context:  a.Range.Ptr(),
	}
}

// bodyContent is body.Content with the names valid here appended to the
// details of "Unsupported ..." diagnostics.
func bodyContent(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	content, diags := body.Content(schema)
	var valid []string
	for _, a := range schema.Attributes {
		valid = append(valid, a.Name)
	}
	for _, b := range schema.Blocks {
		h := b.Type
		for _, l := range b.LabelNames {
			h += ` "<` + l + `>"`
		}
		valid = append(valid, h+" { }")
	}
	for _, d := range diags {
		if d.Summary == "Unsupported argument" || d.Summary == "Unsupported block type" {
			if len(valid) == 0 {
				d.Detail += " Nothing is expected here."
			} else {
				d.Detail += " Valid here: " + strings.Join(valid, ", ") + "."
			}
		}
	}
	return content, diags
}

// plainBody returns the native-syntax body behind b, if it is one.
func plainBody(b hcl.Body) (*hclsyntax.Body, bool) {
	sb, ok := b.(*hclsyntax.Body)
	return sb, ok
}

func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// didYouMean returns ` Did you mean "x"?` for closest(given, names), or "".
func didYouMean(given string, names []string) string {
	return suggestion(closest(given, names))
}

// suggestion returns ` Did you mean "x"?` for x, or "" for "".
func suggestion(x string) string {
	if x == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", x)
}

// closest returns the name nearest to given, if it is near enough to be a
// likely misspelling, or "" (see suggest.Closest).
func closest(given string, names []string) string { return suggest.Closest(given, names) }

// sortDiags orders diagnostics by position (those without one first) so
// output is stable.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return diags
}

// mask overwrites the source text of secret literals in the copy of the file
// Format uses, so snippets never show them. Lengths are kept, so every range
// stays valid.
func (f *File) mask(ranges []hcl.Range) {
	for _, r := range ranges {
		if f.remap != nil {
			r.Start, r.End = f.remap(r.Start), f.remap(r.End)
		}
		hf := f.files[r.Filename]
		if hf == nil || r.End.Byte > len(hf.Bytes) || r.Start.Byte > r.End.Byte {
			continue
		}
		b := append([]byte(nil), hf.Bytes...)
		for i := r.Start.Byte; i < r.End.Byte; i++ {
			if c := b[i]; c != '"' && c != '\n' && c != '\r' {
				b[i] = '*'
			}
		}
		f.files[r.Filename] = &hcl.File{Body: hf.Body, Bytes: b, Nav: hf.Nav}
	}
}

// TaskName returns the name of task k of pipeline when it runs as more than
// one task: "<pipeline>-<k>", k counting from 0 (Kafka Connect names its
// tasks the same way). It is the task's checkpoint name, the sink's
// sdk.Config.Pipeline, its lease and its name in the status API and
// metrics.
func TaskName(pipeline string, k int) string { return fmt.Sprintf("%s-%d", pipeline, k) }

// checkTaskNames reports a task name (see TaskName) that is also the name of
// another pipeline or of another pipeline's task: the two would share a
// checkpoint and a sink's offsets.
func checkTaskNames(pipes []*Pipeline) hcl.Diagnostics {
	var diags hcl.Diagnostics
	owner := map[string]*Pipeline{}
	for _, p := range pipes {
		owner[p.Name] = p
	}
	for _, p := range pipes {
		if p.Parallelism <= 1 {
			continue
		}
		for k := range p.Parallelism {
			name := TaskName(p.Name, k)
			other := owner[name]
			if other == nil {
				owner[name] = p
				continue
			}
			what := fmt.Sprintf("pipeline %q at %s", other.Name, posString(other.Range))
			if other.Name != name {
				what = fmt.Sprintf("a task of pipeline %q (parallelism at %s)", other.Name, posString(other.parallelismRange))
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Task name collides with another pipeline",
				Detail: fmt.Sprintf("With parallelism = %d, pipeline %q runs as tasks %q to %q, but %q is also the name of %s; each needs its own checkpoint. Rename one of the pipelines.",
					p.Parallelism, p.Name, TaskName(p.Name, 0), TaskName(p.Name, p.Parallelism-1), name, what),
				Subject: p.parallelismRange.Ptr(),
			})
			break
		}
	}
	return diags
}

// Tasks returns the units that run, in file order: each pipeline split into
// its tasks. A pipeline whose Parallelism is 1 is returned as it is (Name ==
// Group, Task 0, Tasks 1), so that its checkpoint and its sink's offsets keep
// their names. A pipeline with Parallelism N > 1 becomes N copies, task k
// named TaskName(Group, k) (Task k, Tasks N): its checkpoint is its own, a
// "dir" store's in the subdirectory <dir>/<task name> of the pipeline's
// checkpoint directory. Each copy has its own compiled built-in transforms
// (a Step is for one goroutine at a time); the copies share the pipeline's
// plugin blocks, which nobody may modify.
func Tasks(pipes []*Pipeline) []*Pipeline {
	out := make([]*Pipeline, 0, len(pipes))
	for _, p := range pipes {
		if p.Parallelism <= 1 {
			if p.Tasks == 0 {
				p.Group, p.Tasks = p.Name, 1
			}
			out = append(out, p)
			continue
		}
		for k := range p.Parallelism {
			t := *p
			t.Name, t.Group, t.Task, t.Tasks = TaskName(p.Name, k), p.Name, k, p.Parallelism
			if t.Checkpoint.Store != StorePostgres {
				t.Checkpoint.Dir = filepath.Join(p.Checkpoint.Dir, t.Name)
			}
			t.Transforms = ownSteps(p.Transforms)
			out = append(out, &t)
		}
	}
	return out
}

// ownSteps returns a copy of ts whose built-ins have Steps of their own.
func ownSteps(ts []Transform) []Transform {
	out := slices.Clone(ts)
	for i := range out {
		if out[i].Step == nil {
			continue
		}
		// NewStep fails only for a processor, and out[i] is a built-in
		// that compiled once already: keeping the shared Step is never
		// reached.
		if st, err := out[i].NewStep(); err == nil {
			out[i].Step = st
		}
	}
	return out
}
