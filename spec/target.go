package spec

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// targetAttrs are all attributes of a target block; typeOf says which type
// each type-specific one belongs to.
var targetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true}, {Name: "apps", Required: true},
		{Name: "endpoint"}, {Name: "endpoints"}, {Name: "credential"}, {Name: "token_env"}, {Name: "token_file"},
		{Name: "ca_file"}, {Name: "client_cert_file"}, {Name: "client_key_file"},
		{Name: "kubeconfig"}, {Name: "context"}, {Name: "namespace"}, {Name: "mode"},
		{Name: "image"}, {Name: "replicas"}, {Name: "node_selector"}, {Name: "image_pull_secrets"}, {Name: "executor"},
		{Name: "selector"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "rollout"}, {Type: "resources"}, {Type: "toleration"}, {Type: "autoscaling"}},
}

var typeOf = map[string]TargetType{
	"endpoint": TargetHost, "endpoints": TargetHost, "credential": TargetHost, "token_env": TargetHost, "token_file": TargetHost,
	"ca_file": TargetHost, "client_cert_file": TargetHost, "client_key_file": TargetHost,
	"kubeconfig": TargetKubernetes, "context": TargetKubernetes, "namespace": TargetKubernetes, "mode": TargetKubernetes,
	"image": TargetKubernetes, "replicas": TargetKubernetes, "node_selector": TargetKubernetes, "image_pull_secrets": TargetKubernetes,
	"executor": TargetKubernetes, "resources": TargetKubernetes, "toleration": TargetKubernetes, "autoscaling": TargetKubernetes,
	"selector": TargetFleet, "rollout": TargetFleet,
}

var rolloutSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "rate_limit"}, {Name: "rate_growth"}, {Name: "rate_max"}, {Name: "device_timeout"}, {Name: "auto_rollback"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "wave"}, {Type: "health_gate"}, {Type: "abort"}},
}

var waveSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "percent"}, {Name: "selector"}},
}

var healthGateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "success_ratio"}, {Name: "soak"}},
}

var abortSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "failure_ratio"}, {Name: "min_sample"}},
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (l *loader) decodeTarget(b *hcl.Block) {
	named := l.checkName(b, "target", l.targetNames, nameRE, nameRule)
	content, d := b.Body.Content(targetSchema)
	l.diags = append(l.diags, d...)
	t := &Target{Name: b.Labels[0], DeclRange: b.DefRange}
	attrs := content.Attributes

	typeOK := false
	if a := attrs["type"]; a != nil {
		if s, ok := l.str(a, "type"); ok {
			switch tt := TargetType(s); tt {
			case TargetHost, TargetKubernetes, TargetFleet:
				t.Type, typeOK = tt, true
			default:
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Unknown target type",
					"The target type %q is not known: use \"host\", \"kubernetes\" or \"fleet\".", s))
			}
		}
	}

	if a := attrs["apps"]; a != nil {
		items, _ := l.strList(a, "apps")
		t.Apps = []string{}
		var apps []*App
		for _, it := range items {
			app := l.cfg.App(it.val)
			switch {
			case app == nil:
				l.diags = append(l.diags, errDiag(it.rng, "Unknown app",
					"Target %q names app %q, but no app of that name is declared.", t.Name, it.val))
				continue
			case contains(t.Apps, it.val):
				l.diags = append(l.diags, errDiag(it.rng, "Duplicate app",
					"Target %q already lists app %q.", t.Name, it.val))
				continue
			}
			t.Apps = append(t.Apps, it.val)
			apps = append(apps, app)
		}
		l.checkTargetApps(t, apps)
	}

	// Type-specific fields on a target of another type.
	if typeOK {
		for _, name := range sortedKeys(attrs) {
			a := attrs[name]
			if owner, ok := typeOf[name]; ok && owner != t.Type {
				l.diags = append(l.diags, errDiag(a.NameRange, "Argument not valid for target type",
					"The argument %q belongs to %s targets; target %q has type %q.", name, owner, t.Name, t.Type))
				delete(attrs, name)
			}
		}
		var kept []*hcl.Block
		for _, blk := range content.Blocks {
			if owner := typeOf[blk.Type]; owner != t.Type {
				l.diags = append(l.diags, errDiag(blk.DefRange, "Block not valid for target type",
					"A %s block belongs to %s targets; target %q has type %q.", blk.Type, owner, t.Name, t.Type))
				continue
			}
			kept = append(kept, blk)
		}
		content.Blocks = kept
	}

	switch {
	case !typeOK:
	case t.Type == TargetHost:
		t.Host = l.decodeHostTarget(b, attrs)
	case t.Type == TargetKubernetes:
		t.Kubernetes = l.decodeKubeTarget(b, attrs, content.Blocks)
	case t.Type == TargetFleet:
		t.Fleet = l.decodeFleetTarget(attrs, content.Blocks)
	}
	if named {
		l.cfg.Targets = append(l.cfg.Targets, t)
	}
}

func sortedKeys(attrs hcl.Attributes) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkTargetApps reports host names and routes that two apps of a target
// both claim. Apps are taken in declaration order, so the later app gets
// the diagnostic whatever order the target lists them in.
func (l *loader) checkTargetApps(t *Target, listed []*App) {
	var apps []*App
	for _, a := range l.cfg.Apps {
		for _, b := range listed {
			if a == b {
				apps = append(apps, a)
			}
		}
	}
	hostOwner := map[string]*App{}
	type owner struct {
		app   *App
		route routeItem
	}
	routeOwner := map[string]owner{}
	for _, app := range apps {
		info := l.appInfo[app]
		for _, h := range info.hosts {
			if prev, dup := hostOwner[h.val]; dup {
				l.reportOnce(h.rng, "Host conflict",
					"Apps %q and %q both claim host %q on target %q; a host name routes to one app.", prev.Name, app.Name, h.val, t.Name)
				continue
			}
			hostOwner[h.val] = app
		}
		// Apps with host names are reached by those names; only apps
		// answering on any host (no hosts) share one route space.
		if len(info.hosts) > 0 {
			continue
		}
		for _, r := range info.routes {
			if prev, dup := routeOwner[r.key]; dup && prev.app != app {
				l.reportOnce(r.rng, "Route conflict",
					"Apps %q and %q both claim the route %s on target %q and neither sets hosts; give one of them hosts, or change a route.", prev.app.Name, app.Name, sameRoute(prev.route, r), t.Name)
				continue
			}
			routeOwner[r.key] = owner{app: app, route: r}
		}
	}
}

// reportOnce adds an error unless one with the same summary was already
// reported at rng.
func (l *loader) reportOnce(rng hcl.Range, summary, detail string, args ...any) {
	key := fmt.Sprintf("%s:%d:%s", rng.Filename, rng.Start.Byte, summary)
	if l.reported[key] {
		return
	}
	l.reported[key] = true
	l.diags = append(l.diags, errDiag(rng, summary, detail, args...))
}

// movedCredentialArgs are the host target arguments that named credentials
// before they moved to the operator's credentials file; a spec using one
// gets a diagnostic that explains the move.
var movedCredentialArgs = []string{"token_env", "token_file", "ca_file", "client_cert_file", "client_key_file"}

func (l *loader) decodeHostTarget(b *hcl.Block, attrs hcl.Attributes) *HostTarget {
	h := &HostTarget{}
	ep, eps := attrs["endpoint"], attrs["endpoints"]
	var items []strItem
	switch {
	case ep == nil && eps == nil:
		l.diags = append(l.diags, errDiag(b.DefRange, "Missing host endpoint",
			"Host target %q needs the URL of its ferry-host control API: endpoint = \"http://127.0.0.1:8081\" (or endpoints = [...] for several hosts).", b.Labels[0]))
	case ep != nil && eps != nil:
		l.diags = append(l.diags, errDiag(eps.NameRange, "Conflicting arguments",
			"Set either endpoint or endpoints on a host target, not both."))
	case ep != nil:
		if s, ok := l.str(ep, "endpoint"); ok {
			items = []strItem{{val: s, rng: ep.Expr.Range()}}
		}
	default:
		var ok bool
		items, ok = l.strList(eps, "endpoints")
		if len(items) == 0 && ok {
			l.diags = append(l.diags, errDiag(eps.Expr.Range(), "Missing host endpoint",
				"The endpoints list of host target %q is empty.", b.Labels[0]))
		}
	}
	for _, it := range items {
		if err := checkEndpoint(it.val); err != nil {
			l.diags = append(l.diags, errDiag(it.rng, "Invalid endpoint",
				"The endpoint %q is not valid: %s. Write a base URL such as \"http://127.0.0.1:8081\" or \"https://host.example.com:8443\".", it.val, err))
			continue
		}
		if contains(h.Endpoints, it.val) {
			l.diags = append(l.diags, errDiag(it.rng, "Duplicate endpoint",
				"The endpoint %q is already listed.", it.val))
			continue
		}
		h.Endpoints = append(h.Endpoints, it.val)
	}
	if a := attrs["credential"]; a != nil {
		if s, ok := l.str(a, "credential"); ok {
			if nameRE.MatchString(s) {
				h.Credential = s
			} else {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid credential name",
					"The credential name %q is not valid: use %s.", s, nameRule))
			}
		}
	}
	// Credentials are the operator's: a spec that could name a token (an
	// environment variable or any file of the machine running ferry) next
	// to an endpoint of its choosing could make the agent send it there.
	for _, name := range movedCredentialArgs {
		if a := attrs[name]; a != nil {
			l.diags = append(l.diags, errDiag(a.NameRange, "Credential in the spec",
				"%s names a credential on the machine that runs ferry, and a spec chooses its endpoints, so a commit could make the agent send that credential to an endpoint of the committer's choosing. Credentials now live with the operator: move %s into a credential block of the credentials file (ferry agent --credentials FILE), bound to this target's endpoints, and write credential = \"NAME\" here instead. By hand, ferry plan/apply/destroy also take --host-token-file or FERRY_HOST_TOKEN for targets without a credential.", name, name))
		}
	}
	return h
}

// nonEmpty evaluates a string attribute that may not be empty.
func (l *loader) nonEmpty(a *hcl.Attribute) (string, bool) {
	s, ok := l.str(a, a.Name)
	if ok && s == "" {
		l.diags = append(l.diags, errDiag(a.Expr.Range(), "Empty value",
			"The value of %s must not be empty; leave the argument out instead.", a.Name))
		return "", false
	}
	return s, ok
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("it does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("it has no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("it may not have a user, query or fragment")
	}
	return nil
}

func (l *loader) decodeKubeTarget(b *hcl.Block, attrs hcl.Attributes, blocks []*hcl.Block) *KubeTarget {
	k := &KubeTarget{Namespace: "default", Mode: KubeModeHost, Replicas: 1}
	if a := attrs["kubeconfig"]; a != nil {
		if s, ok := l.nonEmpty(a); ok {
			k.Kubeconfig = l.credPath(s)
		}
	}
	if a := attrs["context"]; a != nil {
		if s, ok := l.nonEmpty(a); ok {
			k.Context = s
		}
	}
	if a := attrs["namespace"]; a != nil {
		if s, ok := l.str(a, "namespace"); ok {
			if namespaceRE.MatchString(s) {
				k.Namespace = s
			} else {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid namespace",
					"%q is not a Kubernetes namespace name: use up to 63 lowercase letters, digits or \"-\", starting and ending with a letter or digit.", s))
			}
		}
	}
	if a := attrs["mode"]; a != nil {
		if s, ok := l.str(a, "mode"); ok {
			if s == KubeModeHost || s == KubeModeSpinApp {
				k.Mode = s
			} else {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid kubernetes mode",
					"The mode %q is not known: use \"host\" (ferry's own host image) or \"spinapp\" (a SpinKube SpinApp).", s))
			}
		}
	}
	l.decodeKubeWorkload(b, k, attrs, blocks) // kube.go
	return k
}

// selector evaluates attr as a label selector.
func (l *loader) selector(a *hcl.Attribute) (LabelSelector, bool) {
	s, ok := l.str(a, a.Name)
	if !ok {
		return LabelSelector{}, false
	}
	sel, err := ParseLabelSelector(s)
	if err != nil {
		l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid label selector",
			"The selector %q is not valid: %s. Write Kubernetes label selectors such as \"region=eu, tier in (edge,store), !canary\".", s, strings.TrimPrefix(err.Error(), ErrInvalidSelector.Error()+": ")))
		return LabelSelector{}, false
	}
	return sel, true
}

func (l *loader) decodeFleetTarget(attrs hcl.Attributes, blocks []*hcl.Block) *FleetTarget {
	f := &FleetTarget{Rollout: DefaultRollout()}
	if a := attrs["selector"]; a != nil {
		if sel, ok := l.selector(a); ok {
			f.Selector = sel
		}
	}
	for i, b := range blocks {
		if i > 0 {
			l.duplicateBlock(b, blocks[0], "in a target")
			continue
		}
		f.Rollout = l.decodeRollout(b)
	}
	return f
}

func (l *loader) decodeRollout(b *hcl.Block) *Rollout {
	r := DefaultRollout()
	content, d := b.Body.Content(rolloutSchema)
	l.diags = append(l.diags, d...)
	if a := content.Attributes["rate_limit"]; a != nil {
		if n, ok := l.integer(a, "rate_limit", 0, math.MaxInt32, "Invalid rate limit"); ok {
			r.RateLimit = int(n)
		}
	}
	l.decodeRateGrowth(r, content.Attributes)
	if a := content.Attributes["device_timeout"]; a != nil {
		if t, ok := l.duration(a, "device_timeout", "Invalid duration"); ok {
			if t == 0 {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid duration",
					"The value of device_timeout must be more than zero."))
			} else {
				r.DeviceTimeout = t
			}
		}
	}
	if a := content.Attributes["auto_rollback"]; a != nil {
		if v, ok := l.boolean(a, "auto_rollback"); ok {
			r.AutoRollback = v
		}
	}

	var waves []*hcl.Block
	var gate, abort *hcl.Block
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "wave":
			waves = append(waves, blk)
		case "health_gate":
			if gate != nil {
				l.duplicateBlock(blk, gate, "in a rollout")
				continue
			}
			gate = blk
			gc, d := blk.Body.Content(healthGateSchema)
			l.diags = append(l.diags, d...)
			if a := gc.Attributes["success_ratio"]; a != nil {
				if v, ok := l.ratio(a, "success_ratio"); ok {
					r.HealthGate.SuccessRatio = v
				}
			}
			if a := gc.Attributes["soak"]; a != nil {
				if v, ok := l.duration(a, "soak", "Invalid duration"); ok {
					r.HealthGate.Soak = v
				}
			}
		case "abort":
			if abort != nil {
				l.duplicateBlock(blk, abort, "in a rollout")
				continue
			}
			abort = blk
			ac, d := blk.Body.Content(abortSchema)
			l.diags = append(l.diags, d...)
			if a := ac.Attributes["failure_ratio"]; a != nil {
				if v, ok := l.ratio(a, "failure_ratio"); ok {
					r.Abort.FailureRatio = v
				}
			}
			if a := ac.Attributes["min_sample"]; a != nil {
				if n, ok := l.integer(a, "min_sample", 0, math.MaxInt32, "Invalid minimum sample"); ok {
					r.Abort.MinSample = int(n)
				}
			}
		}
	}
	if len(waves) > 0 {
		r.Waves = l.decodeWaves(b, waves)
	}
	return r
}

// decodeRateGrowth decodes rate_growth and rate_max into r, whose
// RateLimit is decoded: the growth is a finite factor of at least 1, and
// both need a rate limit to grow; the cap needs a growth and is not below
// the rate limit.
func (l *loader) decodeRateGrowth(r *Rollout, attrs hcl.Attributes) {
	ga, ma := attrs["rate_growth"], attrs["rate_max"]
	if ga != nil {
		if f, ok := l.number(ga, "rate_growth"); ok {
			g, _ := f.Float64()
			switch {
			case f.Sign() < 0 || g < 1:
				l.diags = append(l.diags, errDiag(ga.Expr.Range(), "Invalid rate growth",
					"The value of rate_growth is the factor the rate limit is multiplied by at each wave, and must be at least 1 (1 means no growth), not %s.", f.Text('g', 10)))
			case math.IsInf(g, 0):
				l.diags = append(l.diags, errDiag(ga.Expr.Range(), "Invalid rate growth",
					"The value of rate_growth must be a finite number; %s is too large (use rate_max to cap the rate instead).", f.Text('g', 10)))
			case r.RateLimit == 0:
				l.diags = append(l.diags, errDiag(ga.Expr.Range(), "Rate growth without a rate limit",
					"rate_growth multiplies rate_limit at each wave, but this rollout has no rate limit (rate_limit is 0 or not set), so there is nothing to grow. Set rate_limit = N, the first wave's devices per minute."))
			default:
				r.RateGrowth = g
			}
		}
	}
	if ma != nil {
		n, ok := l.integer(ma, "rate_max", 1, math.MaxInt32, "Invalid rate limit")
		switch {
		case !ok:
		case ga == nil:
			l.diags = append(l.diags, errDiag(ma.Expr.Range(), "Rate cap without rate growth",
				"rate_max caps the rate that rate_growth grows; without rate_growth the rate stays rate_limit, so the cap has no effect. Set rate_growth = F, or remove rate_max."))
		case int(n) < r.RateLimit:
			l.diags = append(l.diags, errDiag(ma.Expr.Range(), "Invalid rate limit",
				"The value of rate_max (%d) must not be below rate_limit (%d): the rate only grows from rate_limit.", n, r.RateLimit))
		default:
			r.RateMax = int(n)
		}
	}
}

// decodeWaves decodes and checks the waves of a rollout: fleet-wide waves
// (no selector) must strictly increase, and the last wave must be a
// fleet-wide 100.
func (l *loader) decodeWaves(rollout *hcl.Block, blocks []*hcl.Block) []Wave {
	var waves []Wave
	last := 0
	var lastRng hcl.Range
	lastWide, lastOK := false, false
	for _, b := range blocks {
		lastOK = false
		content, d := b.Body.Content(waveSchema)
		l.diags = append(l.diags, d...)
		w := Wave{}
		pa, sa := content.Attributes["percent"], content.Attributes["selector"]
		if sa != nil {
			sel, ok := l.selector(sa)
			if !ok {
				continue
			}
			if sel.Empty() {
				l.diags = append(l.diags, errDiag(sa.Expr.Range(), "Invalid label selector",
					"A wave's selector must not be empty; leave it out for a fleet-wide wave."))
				continue
			}
			w.Selector = sel
			w.Percent = 100
		}
		lastWide = sa == nil
		lastRng = b.DefRange
		if pa == nil && sa == nil {
			l.diags = append(l.diags, errDiag(b.DefRange, "Missing wave percentage",
				"A wave without a selector needs percent = N, the share of the fleet (1 to 100, cumulative) updated once the wave is done."))
			continue
		}
		if pa != nil {
			lastRng = pa.Expr.Range()
			n, ok := l.integer(pa, "percent", 1, 100, "Invalid percentage")
			if !ok {
				continue
			}
			w.Percent = int(n)
			if sa == nil {
				if w.Percent <= last {
					l.diags = append(l.diags, errDiag(pa.Expr.Range(), "Percentages not increasing",
						"Fleet-wide waves are cumulative, so each must cover more of the fleet than the one before: %d%% follows %d%%.", w.Percent, last))
					last = w.Percent
					continue
				}
				last = w.Percent
			}
		}
		waves = append(waves, w)
		lastOK = true
	}
	if lastOK && (!lastWide || last != 100) {
		l.diags = append(l.diags, errDiag(lastRng, "Rollout does not reach 100%",
			"The last wave of a rollout must be a fleet-wide wave of percent = 100, so every device ends up updated."))
	}
	return waves
}
