package spec

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// LoadOptions are the options of Load and LoadFiles. The zero value uses
// every variable's default.
type LoadOptions struct {
	// Vars gives values for variables by name, like terraform's -var; they
	// replace the declared defaults. Naming an undeclared variable is an
	// error. Values for secret variables are ignored with a warning: secrets
	// are resolved on the target at run time and never pass through Load.
	Vars map[string]string
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "registry"},
		{Type: "trust"},
		{Type: "app", LabelNames: []string{"name"}},
		{Type: "target", LabelNames: []string{"name"}},
	},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default"}, {Name: "secret"}, {Name: "description"}},
}

var registrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "repository", Required: true}, {Name: "insecure"}},
}

var trustSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "keys"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "identity"}},
}

var identitySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "issuer"}, {Name: "issuer_regexp"}, {Name: "subject"}, {Name: "subject_regexp"},
	},
}

// nameRE is the rule for app, component and target names: a Kubernetes
// DNS label (RFC 1123) that starts with a letter, which is also a valid OCI
// repository path component.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

const nameRule = "a lowercase letter, then up to 62 lowercase letters, digits or \"-\", not ending in \"-\""

// loader holds the state of one load.
type loader struct {
	dir     string // as given
	absDir  string // absolute
	realDir string // absolute, symlinks resolved ("" if dir does not exist)
	opts    LoadOptions
	cfg     *Config
	diags   hcl.Diagnostics
	ctx     *hcl.EvalContext

	varByName  map[string]*Variable
	localExprs map[string]*hcl.Attribute
	localVals  map[string]cty.Value

	appNames    map[string]hcl.Range
	targetNames map[string]hcl.Range
	appInfo     map[*App]*appInfo
	// reported keeps conflicts already reported for a range, so a conflict
	// seen from several targets is reported once.
	reported map[string]bool
}

// Load reads every *.hcl file of dir (not recursive; names starting with
// "." are skipped) and returns the best-effort Config and all diagnostics.
// It never builds and never touches the network; it only reads the spec
// files and checks the paths they name.
func Load(dir string, opts LoadOptions) (*Config, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &Config{Dir: dir, Files: map[string]*hcl.File{}}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read spec directory",
			Detail:   fmt.Sprintf("The spec directory %q cannot be read: %s.", dir, err),
		}}
	}
	files := map[string][]byte{}
	var diags hcl.Diagnostics
	// Spec files are read through an os.Root at dir: a spec file that is a
	// symbolic link leading outside (ln -s /proc/self/environ leak.hcl)
	// is refused before a byte of it is read, so no diagnostic's source
	// snippet can show it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return &Config{Dir: dir, Files: map[string]*hcl.File{}}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read spec directory",
			Detail:   fmt.Sprintf("The spec directory %q cannot be read: %s.", dir, err),
		}}
	}
	defer root.Close()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".hcl") || strings.HasPrefix(name, ".") {
			continue
		}
		if d := checkSpecFile(root, dir, name); d != nil {
			diags = append(diags, d)
			continue
		}
		src, err := root.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read spec file",
				Detail:   fmt.Sprintf("The spec file %q cannot be read: %s.", filepath.Join(dir, name), err),
			})
			continue
		}
		files[name] = src
	}
	if len(files) == 0 && !diags.HasErrors() {
		return &Config{Dir: dir, Files: map[string]*hcl.File{}}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No spec files",
			Detail:   fmt.Sprintf("The directory %q has no *.hcl files; ferry reads its spec from them.", dir),
		}}
	}
	cfg, more := LoadFiles(dir, files, opts)
	return cfg, append(diags, more...)
}

// checkSpecFile returns a diagnostic when the spec file name in root is
// not a regular file inside it: a symbolic link that leads outside the spec
// directory, or a device, pipe or directory. The diagnostic names the file
// and shows nothing of what it points to.
func checkSpecFile(root *os.Root, dir, name string) *hcl.Diagnostic {
	fi, err := root.Stat(name)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		return nil // a dangling link: reading reports it
	case err != nil:
		return &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Spec file outside the spec directory",
			Detail:   fmt.Sprintf("The spec file %q is a symbolic link that leads outside the spec directory %q; ferry reads only files inside it, so it was not read.", filepath.Join(dir, name), dir),
		}
	case !fi.Mode().IsRegular():
		return &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Spec file is not a regular file",
			Detail:   fmt.Sprintf("The spec file %q is a %s, not a regular file, so it was not read.", filepath.Join(dir, name), fi.Mode().Type()),
		}
	}
	return nil
}

// LoadFiles is Load for spec files given in memory: files maps file names
// (relative to dir) to their contents. Paths named by the spec are still
// checked against dir on disk. Files are processed in name order.
func LoadFiles(dir string, files map[string][]byte, opts LoadOptions) (*Config, hcl.Diagnostics) {
	cfg := &Config{Dir: dir, Files: map[string]*hcl.File{}}
	l := &loader{
		dir:         dir,
		opts:        opts,
		cfg:         cfg,
		varByName:   map[string]*Variable{},
		localExprs:  map[string]*hcl.Attribute{},
		localVals:   map[string]cty.Value{},
		appNames:    map[string]hcl.Range{},
		targetNames: map[string]hcl.Range{},
		appInfo:     map[*App]*appInfo{},
		reported:    map[string]bool{},
	}
	l.absDir = dir
	if a, err := filepath.Abs(dir); err == nil {
		l.absDir = a
	}
	if r, err := filepath.EvalSymlinks(l.absDir); err == nil {
		l.realDir = r
	}

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	byType := map[string][]*hcl.Block{}
	for _, n := range names {
		filename := filepath.Join(dir, n)
		f, d := hclsyntax.ParseConfig(files[n], filename, hcl.InitialPos)
		l.diags = append(l.diags, d...)
		if f == nil || f.Body == nil {
			continue
		}
		cfg.Files[filename] = f
		content, d := f.Body.Content(rootSchema)
		l.diags = append(l.diags, d...)
		for _, b := range content.Blocks {
			byType[b.Type] = append(byType[b.Type], b)
		}
	}

	l.decodeVariables(byType["variable"])
	l.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.varObject(), "local": cty.EmptyObjectVal},
		Functions: Functions(),
	}
	l.decodeLocals(byType["locals"])
	l.decodeRegistry(byType["registry"])
	l.decodeTrust(byType["trust"])
	for _, b := range byType["app"] {
		l.decodeApp(b)
	}
	for _, b := range byType["target"] {
		l.decodeTarget(b)
	}
	return cfg, l.diags
}

// checkName reports an invalid or duplicate block name. seen maps names
// already used to their ranges; kind is "app", "component", ...
func (l *loader) checkName(b *hcl.Block, kind string, seen map[string]hcl.Range, re *regexp.Regexp, rule string) bool {
	name := b.Labels[0]
	rng := b.LabelRanges[0]
	if prev, dup := seen[name]; dup {
		l.diags = append(l.diags, errDiag(rng, "Duplicate "+kind,
			"%s named %q is already declared at %s; names must be unique.", article(kind), name, prev))
		return false
	}
	seen[name] = rng
	if !re.MatchString(name) {
		l.diags = append(l.diags, errDiag(rng, "Invalid name",
			"The %s name %q is not valid: use %s.", kind, name, rule))
		return false
	}
	return true
}

// article returns "A kind" or "An kind".
func article(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "An " + kind
	}
	return "A " + kind
}

func (l *loader) decodeVariables(blocks []*hcl.Block) {
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if !l.checkName(b, "variable", seen, variableNameRE, "a lowercase letter, then up to 62 lowercase letters, digits or \"_\"") {
			continue
		}
		v := &Variable{Name: b.Labels[0], DeclRange: b.DefRange}
		content, d := b.Body.Content(variableSchema)
		l.diags = append(l.diags, d...)
		// Defaults, descriptions and the secret flag are constants: they
		// may not refer to variables, locals or functions.
		if a := content.Attributes["secret"]; a != nil {
			val, d := a.Expr.Value(nil)
			l.diags = append(l.diags, d...)
			if !d.HasErrors() {
				if b, ok := l.constBool(val, a.Expr.Range(), "secret"); ok {
					v.Secret = b
				}
			}
		}
		if a := content.Attributes["description"]; a != nil {
			val, d := a.Expr.Value(nil)
			l.diags = append(l.diags, d...)
			if !d.HasErrors() {
				if s, ok := l.toString(val, a.Expr.Range(), "description"); ok {
					v.Description = s
				}
			}
		}
		if a := content.Attributes["default"]; a != nil {
			val, d := a.Expr.Value(nil)
			l.diags = append(l.diags, d...)
			switch {
			case d.HasErrors() || val.IsNull():
			case v.Secret:
				l.diags = append(l.diags, errDiag(a.Range, "Secret variable with default",
					"Variable %q is secret, so its value must not be written in the spec. Remove the default; the target supplies the value at run time.", v.Name))
			default:
				if s, ok := l.toString(val, a.Expr.Range(), "default"); ok {
					v.Default = &s
				}
			}
		}
		if !v.Secret {
			if s, ok := l.opts.Vars[v.Name]; ok {
				v.Value = &s
			} else if v.Default != nil {
				s := *v.Default
				v.Value = &s
			} else if content.Attributes["default"] == nil {
				l.diags = append(l.diags, errDiag(b.DefRange, "Missing variable value",
					"Variable %q has no default and no value was given for it. Add a default, or supply a value when loading the spec.", v.Name))
			}
		}
		l.varByName[v.Name] = v
		l.cfg.Variables = append(l.cfg.Variables, v)
	}
	names := make([]string, 0, len(l.opts.Vars))
	for n := range l.opts.Vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := l.varByName[n]
		switch {
		case !ok:
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("A value was given for variable %q, but the spec declares no such variable.", n),
			})
		case v.Secret:
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Value for secret variable ignored",
				Detail:   fmt.Sprintf("Variable %q is secret: its value is resolved on each target at run time and never passes through the spec, so the value given was ignored.", n),
			})
		}
	}
}

func (l *loader) constBool(v cty.Value, rng hcl.Range, what string) (bool, bool) {
	if v.IsNull() || v.Type() != cty.Bool {
		l.typeError(rng, what, "true or false", nil)
		return false, false
	}
	return v.True(), true
}

// varObject is the value of "var": every non-secret variable. Variables
// without a value are unknown, so expressions using them are skipped
// quietly (the missing value was reported once).
func (l *loader) varObject() cty.Value {
	vals := map[string]cty.Value{}
	for _, v := range l.cfg.Variables {
		if v.Secret {
			continue
		}
		if v.Value != nil {
			vals[v.Name] = cty.StringVal(*v.Value)
		} else {
			vals[v.Name] = cty.UnknownVal(cty.String)
		}
	}
	return cty.ObjectVal(vals)
}

func (l *loader) decodeLocals(blocks []*hcl.Block) {
	var order []string
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		l.diags = append(l.diags, d...)
		list := make([]*hcl.Attribute, 0, len(attrs))
		for _, a := range attrs {
			list = append(list, a)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Range.Start.Byte < list[j].Range.Start.Byte })
		for _, a := range list {
			if prev, dup := l.localExprs[a.Name]; dup {
				l.diags = append(l.diags, errDiag(a.NameRange, "Duplicate local value",
					"A local value named %q is already declared at %s; names must be unique.", a.Name, prev.NameRange))
				continue
			}
			l.localExprs[a.Name] = a
			order = append(order, a.Name)
		}
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string)
	visit = func(name string) {
		a := l.localExprs[name]
		switch state[name] {
		case done:
			return
		case visiting:
			l.diags = append(l.diags, errDiag(a.NameRange, "Local value cycle",
				"Local value %q depends on itself through other local values.", name))
			l.localVals[name] = cty.DynamicVal
			state[name] = done
			return
		}
		state[name] = visiting
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			if s, ok := tr[1].(hcl.TraverseAttr); ok {
				if _, exists := l.localExprs[s.Name]; exists {
					visit(s.Name)
				}
			}
		}
		if state[name] == done { // reported as part of a cycle
			return
		}
		l.ctx.Variables["local"] = cty.ObjectVal(l.localVals)
		v, ok := l.eval(a.Expr)
		if !ok {
			v = cty.DynamicVal
		}
		l.localVals[name] = v
		state[name] = done
	}
	for _, n := range order {
		visit(n)
	}
	l.ctx.Variables["local"] = cty.ObjectVal(l.localVals)
}

// duplicateBlock reports a second block of a kind that may appear once.
func (l *loader) duplicateBlock(b, first *hcl.Block, where string) {
	l.diags = append(l.diags, errDiag(b.DefRange, "Duplicate "+b.Type+" block",
		"Only one %s block is allowed %s; the first is at %s.", b.Type, where, first.DefRange))
}

var (
	repoHostRE = regexp.MustCompile(`^(localhost|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:[0-9]{1,5})?$`)
	repoPathRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
)

func checkRepository(s string) error {
	host, path, _ := strings.Cut(s, "/")
	if !repoHostRE.MatchString(host) || !(strings.ContainsAny(host, ".:[") || host == "localhost") {
		return fmt.Errorf("it must start with a registry host such as \"ghcr.io\", \"localhost:5000\" or \"127.0.0.1:5000\"")
	}
	if path == "" {
		return nil
	}
	for _, p := range strings.Split(path, "/") {
		if !repoPathRE.MatchString(p) {
			return fmt.Errorf("path component %q must be lowercase letters and digits, separated by \".\", \"_\", \"__\" or \"-\"", p)
		}
	}
	return nil
}

func (l *loader) decodeRegistry(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			l.duplicateBlock(b, blocks[0], "in a spec")
			continue
		}
		content, d := b.Body.Content(registrySchema)
		l.diags = append(l.diags, d...)
		r := &Registry{DeclRange: b.DefRange}
		if a := content.Attributes["repository"]; a != nil {
			if s, ok := l.str(a, "repository"); ok {
				if err := checkRepository(s); err != nil {
					l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid repository",
						"The repository %q is not a valid OCI repository: %s.", s, err))
				} else {
					r.Repository = s
				}
			}
		}
		if a := content.Attributes["insecure"]; a != nil {
			if v, ok := l.boolean(a, "insecure"); ok {
				r.Insecure = v
			}
		}
		l.cfg.Registry = r
	}
}

func (l *loader) decodeTrust(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			l.duplicateBlock(b, blocks[0], "in a spec")
			continue
		}
		content, d := b.Body.Content(trustSchema)
		l.diags = append(l.diags, d...)
		t := &Trust{DeclRange: b.DefRange}
		if a := content.Attributes["keys"]; a != nil {
			items, _ := l.strList(a, "keys")
			for _, it := range items {
				abs, ok := l.specPath(it.val, it.rng, "trust key")
				if !ok || !l.checkExists(abs, it.val, it.rng, "Trust key not found", "trust key", false) {
					continue
				}
				if !isPEMPublicKey(abs) {
					l.diags = append(l.diags, errDiag(it.rng, "Invalid trust key",
						"The trust key %q is not a PEM public key (a \"-----BEGIN PUBLIC KEY-----\" block, as written by cosign generate-key-pair).", it.val))
					continue
				}
				t.Keys = append(t.Keys, abs)
			}
		}
		for _, ib := range content.Blocks {
			if id, ok := l.decodeIdentity(ib); ok {
				t.Identities = append(t.Identities, id)
			}
		}
		if content.Attributes["keys"] == nil && len(content.Blocks) == 0 {
			l.diags = append(l.diags, errDiag(b.DefRange, "Empty trust policy",
				"A trust block must name at least one public key (keys = [...]) or one keyless identity (an identity block); an empty policy would trust nobody."))
		}
		l.cfg.Trust = t
	}
}

func isPEMPublicKey(path string) bool {
	const maxKeyFile = 1 << 20
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > maxKeyFile {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(b)
	return block != nil && block.Type == "PUBLIC KEY"
}

func (l *loader) decodeIdentity(b *hcl.Block) (Identity, bool) {
	content, d := b.Body.Content(identitySchema)
	l.diags = append(l.diags, d...)
	ok := !d.HasErrors()
	var id Identity
	pair := func(exact, re string, dst, dstRE *string) {
		ea, ra := content.Attributes[exact], content.Attributes[re]
		switch {
		case ea == nil && ra == nil:
			l.diags = append(l.diags, errDiag(b.DefRange, "Missing "+exact,
				"An identity block needs %s (exact) or %s (a regular expression).", exact, re))
			ok = false
		case ea != nil && ra != nil:
			l.diags = append(l.diags, errDiag(ra.NameRange, "Conflicting arguments",
				"Set either %s or %s in an identity block, not both.", exact, re))
			ok = false
		case ea != nil:
			if s, good := l.str(ea, exact); good {
				*dst = s
			} else {
				ok = false
			}
		default:
			s, good := l.str(ra, re)
			if !good {
				ok = false
				return
			}
			if _, err := regexp.Compile(s); err != nil {
				l.diags = append(l.diags, errDiag(ra.Expr.Range(), "Invalid regular expression",
					"The value of %s is not a valid Go regular expression: %s.", re, err))
				ok = false
				return
			}
			*dstRE = s
		}
	}
	pair("issuer", "issuer_regexp", &id.Issuer, &id.IssuerRegexp)
	pair("subject", "subject_regexp", &id.Subject, &id.SubjectRegexp)
	return id, ok
}
