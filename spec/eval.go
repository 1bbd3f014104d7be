package spec

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions returns the functions available in spec expressions: cty's
// standard library functions that are pure and bounded (no file, network,
// time or randomness), plus try and can. FunctionNames lists them.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		// numbers
		"abs":      stdlib.AbsoluteFunc,
		"ceil":     stdlib.CeilFunc,
		"floor":    stdlib.FloorFunc,
		"max":      stdlib.MaxFunc,
		"min":      stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc,
		"signum":   stdlib.SignumFunc,
		// strings
		"chomp":         stdlib.ChompFunc,
		"format":        boundedFormat(stdlib.FormatFunc),
		"formatlist":    boundedFormat(stdlib.FormatListFunc),
		"join":          stdlib.JoinFunc,
		"lower":         stdlib.LowerFunc,
		"regex":         stdlib.RegexFunc,
		"regexall":      stdlib.RegexAllFunc,
		"regex_replace": stdlib.RegexReplaceFunc,
		"replace":       stdlib.ReplaceFunc,
		"split":         stdlib.SplitFunc,
		"strlen":        stdlib.StrlenFunc,
		"substr":        stdlib.SubstrFunc,
		"title":         stdlib.TitleFunc,
		"trim":          stdlib.TrimFunc,
		"trimprefix":    stdlib.TrimPrefixFunc,
		"trimspace":     stdlib.TrimSpaceFunc,
		"trimsuffix":    stdlib.TrimSuffixFunc,
		"upper":         stdlib.UpperFunc,
		// collections
		"coalesce":     stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc,
		"compact":      stdlib.CompactFunc,
		"concat":       stdlib.ConcatFunc,
		"contains":     stdlib.ContainsFunc,
		"distinct":     stdlib.DistinctFunc,
		"element":      stdlib.ElementFunc,
		"flatten":      stdlib.FlattenFunc,
		"keys":         stdlib.KeysFunc,
		"length":       stdlib.LengthFunc,
		"lookup":       stdlib.LookupFunc,
		"merge":        stdlib.MergeFunc,
		"reverse":      stdlib.ReverseListFunc,
		"slice":        stdlib.SliceFunc,
		"sort":         stdlib.SortFunc,
		"values":       stdlib.ValuesFunc,
		"zipmap":       stdlib.ZipmapFunc,
		// encodings and conversions
		"csvdecode":  stdlib.CSVDecodeFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"tobool":     stdlib.MakeToFunc(cty.Bool),
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
		// errors
		"can": tryfunc.CanFunc,
		"try": tryfunc.TryFunc,
	}
}

// FunctionNames returns the names of Functions, sorted.
func FunctionNames() []string {
	fs := Functions()
	names := make([]string, 0, len(fs))
	for n := range fs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// formatVerbRE finds the width and precision of each format verb.
var formatVerbRE = regexp.MustCompile(`%[-+# 0]*(?:\[[0-9]*\])?([0-9]*)(?:\.([0-9]*))?`)

// maxFormatWidth bounds widths and precisions in format strings, so a spec
// cannot make the loader allocate gigabytes ("%999999999s").
const maxFormatWidth = 999

// boundedFormat wraps format or formatlist and refuses widths or precisions
// above maxFormatWidth.
func boundedFormat(f function.Function) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 0 && args[0].IsKnown() && !args[0].IsNull() && args[0].Type() == cty.String {
				for _, m := range formatVerbRE.FindAllStringSubmatch(args[0].AsString(), -1) {
					for _, n := range m[1:] {
						if len(n) > 3 {
							return cty.NilVal, function.NewArgErrorf(0, "width and precision may be at most %d", maxFormatWidth)
						}
					}
				}
			}
			return f.Call(args)
		},
	})
}

// eval checks the references of expr and evaluates it. ok is false when
// the value is not usable: an error was reported, or the value depends on
// something that failed earlier (and was reported there).
func (l *loader) eval(expr hcl.Expression) (cty.Value, bool) {
	if d := l.checkRefs(expr); d.HasErrors() {
		l.diags = append(l.diags, d...)
		return cty.DynamicVal, false
	}
	v, d := expr.Value(l.ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return cty.DynamicVal, false
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return v, false
	}
	return v, true
}

// checkRefs reports references to undeclared or secret variables and to
// undeclared locals, with better messages than evaluation would give.
func (l *loader) checkRefs(expr hcl.Expression) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		rng := tr.SourceRange()
		name, named := "", false
		if len(tr) > 1 {
			switch step := tr[1].(type) {
			case hcl.TraverseAttr:
				name, named = step.Name, true
			case hcl.TraverseIndex:
				if step.Key.Type() == cty.String && step.Key.IsKnown() && !step.Key.IsNull() {
					name, named = step.Key.AsString(), true
				}
			}
		}
		switch root {
		case "var":
			if !named {
				diags = append(diags, errDiag(rng, "Invalid reference",
					"A reference to a variable must name it, like var.greeting."))
				continue
			}
			v, ok := l.varByName[name]
			switch {
			case !ok:
				diags = append(diags, errDiag(rng, "Reference to undeclared variable",
					"No variable named %q is declared. Declare it with a variable %q block, or fix the name.", name, name))
			case v.Secret:
				diags = append(diags, errDiag(rng, "Secret variable in expression",
					"Variable %q is secret, so its value must never be written into the spec's result or an artifact. Use it in a component's variables as \"{{ %s }}\" instead; the target resolves it at run time.", name, name))
			}
		case "local":
			if !named {
				diags = append(diags, errDiag(rng, "Invalid reference",
					"A reference to a local value must name it, like local.prefix."))
				continue
			}
			if _, ok := l.localExprs[name]; !ok {
				diags = append(diags, errDiag(rng, "Reference to undeclared local value",
					"No local value named %q is declared in a locals block.", name))
			}
		default:
			diags = append(diags, errDiag(rng, "Unknown reference",
				"There is nothing named %q here. Variables are var.NAME and local values are local.NAME.", root))
		}
	}
	return diags
}

// strItem is one evaluated string with the range it came from.
type strItem struct {
	val string
	rng hcl.Range
}

// kvItem is one evaluated map entry with ranges of its key and value.
type kvItem struct {
	key, val       string
	keyRng, valRng hcl.Range
}

func (l *loader) typeError(rng hcl.Range, what, want string, err error) {
	detail := fmt.Sprintf("The value of %s must be %s.", what, want)
	if err != nil {
		detail = fmt.Sprintf("The value of %s must be %s: %s.", what, want, err)
	}
	l.diags = append(l.diags, errDiag(rng, "Incorrect value type", "%s", detail))
}

func (l *loader) toString(v cty.Value, rng hcl.Range, what string) (string, bool) {
	if v.IsNull() {
		l.typeError(rng, what, "a string", fmt.Errorf("it is null"))
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		l.typeError(rng, what, "a string", err)
		return "", false
	}
	return s.AsString(), true
}

// str evaluates attr as a string.
func (l *loader) str(attr *hcl.Attribute, what string) (string, bool) {
	v, ok := l.eval(attr.Expr)
	if !ok {
		return "", false
	}
	return l.toString(v, attr.Expr.Range(), what)
}

// strList evaluates attr as a list of strings. When attr is written as a
// list literal, each item carries the range of its own element.
func (l *loader) strList(attr *hcl.Attribute, what string) ([]strItem, bool) {
	if tup, isTup := attr.Expr.(*hclsyntax.TupleConsExpr); isTup {
		items := make([]strItem, 0, len(tup.Exprs))
		allOK := true
		for _, e := range tup.Exprs {
			v, ok := l.eval(e)
			if !ok {
				allOK = false
				continue
			}
			s, ok := l.toString(v, e.Range(), "each element of "+what)
			if !ok {
				allOK = false
				continue
			}
			items = append(items, strItem{val: s, rng: e.Range()})
		}
		return items, allOK
	}
	lv, rng, ok := l.evalAs(attr, what, cty.List(cty.String), "a list of strings")
	if !ok {
		return nil, false
	}
	var items []strItem
	for it := lv.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			l.typeError(rng, what, "a list of strings", fmt.Errorf("an element is null"))
			return nil, false
		}
		items = append(items, strItem{val: e.AsString(), rng: rng})
	}
	return items, true
}

// evalAs evaluates attr and converts it to typ, reporting a null value or a
// failed conversion as a type error that says desc ("a list of strings").
func (l *loader) evalAs(attr *hcl.Attribute, what string, typ cty.Type, desc string) (cty.Value, hcl.Range, bool) {
	rng := attr.Expr.Range()
	v, ok := l.eval(attr.Expr)
	if !ok {
		return cty.NilVal, rng, false
	}
	if v.IsNull() {
		l.typeError(rng, what, desc, fmt.Errorf("it is null"))
		return cty.NilVal, rng, false
	}
	cv, err := convert.Convert(v, typ)
	if err != nil {
		l.typeError(rng, what, desc, err)
		return cty.NilVal, rng, false
	}
	return cv, rng, true
}

// strMap evaluates attr as a map of strings. When attr is written as an
// object literal, each item carries the ranges of its own key and value.
func (l *loader) strMap(attr *hcl.Attribute, what string) ([]kvItem, bool) {
	if obj, isObj := attr.Expr.(*hclsyntax.ObjectConsExpr); isObj {
		items := make([]kvItem, 0, len(obj.Items))
		seen := map[string]hcl.Range{}
		allOK := true
		for _, it := range obj.Items {
			kv, ok := l.eval(it.KeyExpr)
			if !ok {
				allOK = false
				continue
			}
			k, ok := l.toString(kv, it.KeyExpr.Range(), "each key of "+what)
			if !ok {
				allOK = false
				continue
			}
			if prev, dup := seen[k]; dup {
				l.diags = append(l.diags, errDiag(it.KeyExpr.Range(), "Duplicate key",
					"Key %q of %s is already set at %s.", k, what, prev))
				allOK = false
				continue
			}
			seen[k] = it.KeyExpr.Range()
			vv, ok := l.eval(it.ValueExpr)
			if !ok {
				allOK = false
				continue
			}
			s, ok := l.toString(vv, it.ValueExpr.Range(), fmt.Sprintf("%s[%q]", what, k))
			if !ok {
				allOK = false
				continue
			}
			items = append(items, kvItem{key: k, val: s, keyRng: it.KeyExpr.Range(), valRng: it.ValueExpr.Range()})
		}
		return items, allOK
	}
	mv, rng, ok := l.evalAs(attr, what, cty.Map(cty.String), "a map of strings")
	if !ok {
		return nil, false
	}
	var items []kvItem
	for it := mv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			l.typeError(rng, what, "a map of strings", fmt.Errorf("element %q is null", k.AsString()))
			return nil, false
		}
		items = append(items, kvItem{key: k.AsString(), val: e.AsString(), keyRng: rng, valRng: rng})
	}
	return items, true
}

func (l *loader) boolean(attr *hcl.Attribute, what string) (bool, bool) {
	v, ok := l.eval(attr.Expr)
	if !ok {
		return false, false
	}
	if v.IsNull() {
		l.typeError(attr.Expr.Range(), what, "true or false", fmt.Errorf("it is null"))
		return false, false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		l.typeError(attr.Expr.Range(), what, "true or false", err)
		return false, false
	}
	return b.True(), true
}

func (l *loader) number(attr *hcl.Attribute, what string) (*big.Float, bool) {
	v, ok := l.eval(attr.Expr)
	if !ok {
		return nil, false
	}
	if v.IsNull() {
		l.typeError(attr.Expr.Range(), what, "a number", fmt.Errorf("it is null"))
		return nil, false
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		l.typeError(attr.Expr.Range(), what, "a number", err)
		return nil, false
	}
	return n.AsBigFloat(), true
}

// integer evaluates attr as a whole number in [lo, hi]; a value outside is
// reported with summary.
func (l *loader) integer(attr *hcl.Attribute, what string, lo, hi int64, summary string) (int64, bool) {
	f, ok := l.number(attr, what)
	if !ok {
		return 0, false
	}
	if !f.IsInt() {
		l.diags = append(l.diags, errDiag(attr.Expr.Range(), summary,
			"The value of %s must be a whole number, not %s.", what, f.Text('g', 10)))
		return 0, false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i < lo || i > hi {
		l.diags = append(l.diags, errDiag(attr.Expr.Range(), summary,
			"The value of %s must be between %d and %d, not %s.", what, lo, hi, f.Text('g', 10)))
		return 0, false
	}
	return i, true
}

// ratio evaluates attr as a number between 0 and 1.
func (l *loader) ratio(attr *hcl.Attribute, what string) (float64, bool) {
	f, ok := l.number(attr, what)
	if !ok {
		return 0, false
	}
	r, _ := f.Float64()
	if f.Sign() < 0 || r > 1 {
		l.diags = append(l.diags, errDiag(attr.Expr.Range(), "Invalid ratio",
			"The value of %s is a ratio and must be between 0 and 1 (0.99 means 99%%), not %s.", what, f.Text('g', 10)))
		return 0, false
	}
	return r, true
}

// duration evaluates attr as a Go duration string ("90s", "5m", "1h30m").
// Negative durations are reported with negSummary.
func (l *loader) duration(attr *hcl.Attribute, what, negSummary string) (time.Duration, bool) {
	s, ok := l.str(attr, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		l.diags = append(l.diags, errDiag(attr.Expr.Range(), "Invalid duration",
			"The value of %s must be a duration like \"500ms\", \"5s\", \"2m\" or \"1h30m\", not %q.", what, s))
		return 0, false
	}
	if d < 0 {
		l.diags = append(l.diags, errDiag(attr.Expr.Range(), negSummary,
			"The value of %s must not be negative, but it is %s.", what, s))
		return 0, false
	}
	return d, true
}

// size evaluates attr as a size: a whole number of bytes, or a string
// accepted by ParseSize. Negative numbers are reported with negSummary.
func (l *loader) size(attr *hcl.Attribute, what, negSummary string) (int64, bool) {
	v, ok := l.eval(attr.Expr)
	if !ok {
		return 0, false
	}
	rng := attr.Expr.Range()
	if !v.IsNull() && v.Type() == cty.Number {
		f := v.AsBigFloat()
		if f.Sign() < 0 {
			l.diags = append(l.diags, errDiag(rng, negSummary,
				"The value of %s must not be negative.", what))
			return 0, false
		}
		i, acc := f.Int64()
		if !f.IsInt() || acc != big.Exact {
			l.diags = append(l.diags, errDiag(rng, "Invalid size",
				"The value of %s must be a whole number of bytes, or a string like \"64MiB\".", what))
			return 0, false
		}
		return i, true
	}
	s, ok := l.toString(v, rng, what)
	if !ok {
		return 0, false
	}
	n, err := ParseSize(s)
	if err != nil {
		l.diags = append(l.diags, errDiag(rng, "Invalid size",
			"The value of %s must be a size like \"64MiB\", \"512KiB\", \"1GiB\", \"100MB\" or a plain number of bytes, not %q.", what, s))
		return 0, false
	}
	return n, true
}

// errDiag builds an error diagnostic whose detail is formatted with args.
func errDiag(rng hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  &r,
	}
}
