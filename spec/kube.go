package spec

import (
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cpu"}, {Name: "memory"}},
}

var tolerationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "key"}, {Name: "operator"}, {Name: "value"}, {Name: "effect"}},
}

var autoscalingSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "min"}, {Name: "max", Required: true}, {Name: "cpu_percent"}},
}

// decodeKubeWorkload decodes the arguments and blocks of a kubernetes
// target that shape its workloads: image, replicas, resources,
// node_selector, toleration, image_pull_secrets and autoscaling. Every
// value it accepts is one the Kubernetes API accepts too, so a spec that
// loads does not fail at deploy for its shape.
func (l *loader) decodeKubeWorkload(b *hcl.Block, k *KubeTarget, attrs hcl.Attributes, blocks []*hcl.Block) {
	if a := attrs["image"]; a != nil {
		if s, ok := l.nonEmpty(a); ok {
			if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid image",
					"The image %q contains white space; write an image reference such as \"ghcr.io/ferry-wasm/ferry-host@sha256:...\".", s))
			} else {
				k.Image = s
			}
		}
	}
	if k.Mode == KubeModeHost {
		if attrs["image"] == nil {
			l.diags = append(l.diags, errDiag(b.DefRange, "Missing image",
				"Kubernetes target %q runs apps with ferry's host image (mode \"host\"), so it needs image = \"REGISTRY/ferry-host@sha256:...\", the image its pods run.", b.Labels[0]))
		}
		if l.cfg.Trust != nil && len(l.cfg.Trust.Keys) > 0 {
			k.TrustKeys = append([]string(nil), l.cfg.Trust.Keys...)
			l.checkTrustKeyNames(b, k.TrustKeys)
		} else if a := attrs["type"]; a != nil {
			l.diags = append(l.diags, errDiag(a.Expr.Range(), "Missing trust keys",
				"Kubernetes target %q runs apps with ferry's host image, whose pods verify each artifact's signature against the spec's trust keys before they run it; add a trust block with keys = [\"./cosign.pub\"].", b.Labels[0]))
		}
	}
	if k.Mode == KubeModeSpinApp {
		// A SpinApp has no field for these: refuse them rather than
		// ignore them at deploy.
		for _, name := range []string{"image", "node_selector"} {
			if a := attrs[name]; a != nil {
				l.diags = append(l.diags, errDiag(a.NameRange, "Not valid in mode spinapp",
					"A SpinApp has no field for %s: spin-operator chooses the image and the pods' placement. Remove it, or use mode = \"host\".", name))
			}
		}
		for _, blk := range blocks {
			if blk.Type == "toleration" {
				l.diags = append(l.diags, errDiag(blk.DefRange, "Not valid in mode spinapp",
					"A SpinApp has no field for tolerations: spin-operator chooses the pods' placement. Remove the block, or use mode = \"host\"."))
			}
		}
	}
	if a := attrs["executor"]; a != nil {
		if s, ok := l.nonEmpty(a); ok {
			switch {
			case k.Mode != KubeModeSpinApp:
				l.diags = append(l.diags, errDiag(a.NameRange, "Executor needs mode spinapp",
					"The executor names a SpinAppExecutor, which only a kubernetes target in mode \"spinapp\" uses; remove it or set mode = \"spinapp\"."))
			case len(s) > 253 || !dnsSubdomRE.MatchString(s):
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid SpinAppExecutor name",
					"%q is not a Kubernetes object name: use lowercase letters, digits, \"-\" and \".\", up to 253, starting and ending with a letter or digit.", s))
			default:
				k.Executor = s
			}
		}
	}
	if a := attrs["replicas"]; a != nil {
		if n, ok := l.integer(a, "replicas", 1, math.MaxInt32, "Invalid replicas"); ok {
			k.Replicas = int32(n)
		}
	}
	if a := attrs["node_selector"]; a != nil {
		items, _ := l.strMap(a, "node_selector")
		for _, it := range items {
			if err := kubeLabelKey(it.key); err != nil {
				l.diags = append(l.diags, errDiag(it.keyRng, "Invalid label",
					"The node_selector key %q is not a Kubernetes label key: %s.", it.key, err))
				continue
			}
			if !labelValueRE.MatchString(it.val) {
				l.diags = append(l.diags, errDiag(it.valRng, "Invalid label",
					"The node_selector value %q is not a Kubernetes label value: use up to 63 letters, digits, \"-\", \"_\" or \".\", starting and ending with a letter or digit.", it.val))
				continue
			}
			if k.NodeSelector == nil {
				k.NodeSelector = map[string]string{}
			}
			k.NodeSelector[it.key] = it.val
		}
	}
	if a := attrs["image_pull_secrets"]; a != nil {
		items, _ := l.strList(a, "image_pull_secrets")
		for _, it := range items {
			switch {
			case len(it.val) > 253 || !dnsSubdomRE.MatchString(it.val):
				l.diags = append(l.diags, errDiag(it.rng, "Invalid secret name",
					"%q is not a Kubernetes Secret name: use lowercase letters, digits, \"-\" and \".\", up to 253, starting and ending with a letter or digit.", it.val))
			case contains(k.ImagePullSecrets, it.val):
				l.diags = append(l.diags, errDiag(it.rng, "Duplicate secret name",
					"The image pull secret %q is already listed.", it.val))
			default:
				k.ImagePullSecrets = append(k.ImagePullSecrets, it.val)
			}
		}
	}

	var res, auto *hcl.Block
	cpuWritten := false
	for _, blk := range blocks {
		switch blk.Type {
		case "resources":
			if res != nil {
				l.duplicateBlock(blk, res, "in a target")
				continue
			}
			res = blk
			k.Resources, cpuWritten = l.decodeResources(blk)
		case "toleration":
			if t, ok := l.decodeToleration(blk); ok {
				k.Tolerations = append(k.Tolerations, t)
			}
		case "autoscaling":
			if auto != nil {
				l.duplicateBlock(blk, auto, "in a target")
				continue
			}
			auto = blk
			k.Autoscaling = l.decodeAutoscaling(blk)
		}
	}
	if auto != nil {
		if a := attrs["replicas"]; a != nil {
			l.diags = append(l.diags, errDiag(a.NameRange, "Conflicting arguments",
				"Set either replicas or an autoscaling block on a kubernetes target, not both: with autoscaling the HorizontalPodAutoscaler sets the replica count."))
		}
		k.Replicas = 0
		if !cpuWritten {
			l.diags = append(l.diags, errDiag(auto.DefRange, "Missing CPU request",
				"Autoscaling scales on CPU utilisation, a share of the pods' CPU request, so the target needs resources { cpu = \"100m\" } too."))
		}
	}
}

// decodeResources decodes a resources block and reports whether it sets
// cpu (validly or not).
var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// checkTrustKeyNames reports trust keys whose file names cannot be keys of
// the Secret the pods mount them from: each is a file of one directory.
func (l *loader) checkTrustKeyNames(b *hcl.Block, keys []string) {
	seen := map[string]string{}
	for _, p := range keys {
		name := filepath.Base(p)
		switch {
		case len(name) > 253 || !secretKeyRE.MatchString(name):
			l.diags = append(l.diags, errDiag(l.cfg.Trust.DeclRange, "Invalid trust key",
				"Kubernetes target %q mounts the trust keys as files of a Secret, and %q is not a Secret key: rename the file to letters, digits, \"-\", \"_\" and \".\".", b.Labels[0], name))
		case seen[name] != "":
			l.diags = append(l.diags, errDiag(l.cfg.Trust.DeclRange, "Invalid trust key",
				"Kubernetes target %q mounts the trust keys as files of one directory, and %s and %s are both named %q: rename one.", b.Labels[0], seen[name], p, name))
		}
		seen[name] = p
	}
}

func (l *loader) decodeResources(b *hcl.Block) (*KubeResources, bool) {
	content, d := b.Body.Content(resourcesSchema)
	l.diags = append(l.diags, d...)
	r := &KubeResources{}
	for _, name := range []string{"cpu", "memory"} {
		a := content.Attributes[name]
		if a == nil {
			continue
		}
		s, ok := l.str(a, name)
		if !ok {
			continue
		}
		if err := checkQuantity(s, name == "memory"); err != nil {
			l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid quantity",
				"The %s value %q is not valid: %s. Write a Kubernetes quantity such as %s.", name, s, err, map[string]string{"cpu": `"250m" or "1.5"`, "memory": `"128Mi" or "1G"`}[name]))
			continue
		}
		if name == "cpu" {
			r.CPU = s
		} else {
			r.Memory = s
		}
	}
	return r, content.Attributes["cpu"] != nil
}

var (
	tolerationOperators = []string{"Equal", "Exists"}
	tolerationEffects   = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
)

func (l *loader) decodeToleration(b *hcl.Block) (KubeToleration, bool) {
	content, d := b.Body.Content(tolerationSchema)
	l.diags = append(l.diags, d...)
	t := KubeToleration{Operator: "Equal"}
	ok := !d.HasErrors()
	get := func(name string) (string, *hcl.Attribute) {
		a := content.Attributes[name]
		if a == nil {
			return "", nil
		}
		s, sok := l.str(a, name)
		if !sok {
			ok = false
		}
		return s, a
	}
	key, ka := get("key")
	op, oa := get("operator")
	val, va := get("value")
	eff, ea := get("effect")
	if ka != nil {
		if err := kubeLabelKey(key); err != nil {
			l.diags = append(l.diags, errDiag(ka.Expr.Range(), "Invalid toleration",
				"The toleration key %q is not a Kubernetes label key: %s.", key, err))
			ok = false
		}
		t.Key = key
	}
	if oa != nil {
		if !contains(tolerationOperators, op) {
			l.diags = append(l.diags, errDiag(oa.Expr.Range(), "Invalid toleration",
				"The toleration operator %q is not known: use \"Equal\" or \"Exists\".", op))
			ok = false
		}
		t.Operator = op
	}
	if va != nil {
		switch {
		case t.Operator == "Exists" && val != "":
			l.diags = append(l.diags, errDiag(va.Expr.Range(), "Invalid toleration",
				"A toleration with operator \"Exists\" matches any value; leave value out."))
			ok = false
		case !labelValueRE.MatchString(val):
			l.diags = append(l.diags, errDiag(va.Expr.Range(), "Invalid toleration",
				"The toleration value %q is not a Kubernetes label value: use up to 63 letters, digits, \"-\", \"_\" or \".\", starting and ending with a letter or digit.", val))
			ok = false
		}
		t.Value = val
	}
	if ea != nil {
		if eff != "" && !contains(tolerationEffects, eff) {
			l.diags = append(l.diags, errDiag(ea.Expr.Range(), "Invalid toleration",
				"The toleration effect %q is not known: use \"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\" (or leave it out for every effect).", eff))
			ok = false
		}
		t.Effect = eff
	}
	if t.Key == "" && t.Operator != "Exists" && ok {
		l.diags = append(l.diags, errDiag(b.DefRange, "Invalid toleration",
			"A toleration without a key tolerates every taint and needs operator = \"Exists\"; otherwise give it key = \"...\"."))
		ok = false
	}
	return t, ok
}

func (l *loader) decodeAutoscaling(b *hcl.Block) *KubeAutoscaling {
	content, d := b.Body.Content(autoscalingSchema)
	l.diags = append(l.diags, d...)
	as := &KubeAutoscaling{Min: 1, CPUPercent: 80}
	minOK := true
	if a := content.Attributes["min"]; a != nil {
		n, ok := l.integer(a, "min", 1, math.MaxInt32, "Invalid replicas")
		if ok {
			as.Min = int32(n)
		}
		minOK = ok
	}
	if a := content.Attributes["max"]; a != nil {
		if n, ok := l.integer(a, "max", 1, math.MaxInt32, "Invalid replicas"); ok {
			if minOK && int32(n) < as.Min {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid replicas",
					"The value of max (%d) must be at least min (%d).", n, as.Min))
			} else {
				as.Max = int32(n)
			}
		}
	}
	if a := content.Attributes["cpu_percent"]; a != nil {
		if n, ok := l.integer(a, "cpu_percent", 1, 1000, "Invalid percentage"); ok {
			as.CPUPercent = int32(n)
		}
	}
	return as
}

var (
	labelPrefixRE = dnsSubdomRE
	quantityRE    = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
	quantityMult  = map[string]int64{"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
)

// kubeLabelKey reports whether s is a Kubernetes label key: a name of up
// to 63 characters, optionally after a DNS subdomain prefix and "/".
func kubeLabelKey(s string) error {
	name := s
	if prefix, rest, ok := strings.Cut(s, "/"); ok {
		if prefix == "" || len(prefix) > 253 || !labelPrefixRE.MatchString(prefix) {
			return fmt.Errorf("the prefix %q must be a DNS subdomain (lowercase letters, digits, \"-\" and \".\")", prefix)
		}
		name = rest
	}
	if !labelNameRE.MatchString(name) {
		return fmt.Errorf("the name %q must be 1 to 63 letters, digits, \"-\", \"_\" or \".\", starting and ending with a letter or digit", name)
	}
	return nil
}

// checkQuantity checks s against the part of the Kubernetes quantity
// syntax ferry accepts: a non-negative decimal number and an optional
// suffix, decimal (k M G T P E, and m for thousandths of a CPU) or binary
// (Ki Mi Gi Ti Pi Ei); no sign and no exponent. The value must be more
// than zero: for memory a whole number of bytes, with no "m" suffix; for
// CPU a whole number of millicores (1m, Kubernetes' smallest CPU step).
func checkQuantity(s string, memory bool) error {
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("it must be a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei), with no sign, space or exponent")
	}
	num, suffix := m[1], m[2]
	if len(strings.ReplaceAll(num, ".", "")) > 15 {
		return fmt.Errorf("it has more than 15 digits")
	}
	v, ok := new(big.Rat).SetString(strings.TrimSuffix(num, "."))
	if !ok {
		return fmt.Errorf("%q is not a number", num)
	}
	if suffix == "m" {
		if memory {
			return fmt.Errorf("memory is counted in bytes, so the suffix m (thousandths) does not apply")
		}
		v.Quo(v, big.NewRat(1000, 1))
	} else {
		v.Mul(v, new(big.Rat).SetInt64(quantityMult[suffix]))
	}
	switch {
	case v.Sign() == 0:
		return fmt.Errorf("it must be more than zero")
	case memory && v.Cmp(big.NewRat(1, 1)) < 0:
		return fmt.Errorf("it must be at least one byte")
	case !memory && v.Cmp(big.NewRat(1, 1000)) < 0:
		return fmt.Errorf("it must be at least 1m (a thousandth of a CPU)")
	case !memory && v.Cmp(big.NewRat(1_000_000, 1)) > 0:
		return fmt.Errorf("it must be at most 1000000 CPUs")
	case memory && v.Cmp(new(big.Rat).SetInt64(1<<62)) > 0:
		return fmt.Errorf("it must be at most 4Ei")
	case memory && !v.IsInt():
		return fmt.Errorf("it must be a whole number of bytes")
	case !memory && !new(big.Rat).Mul(v, big.NewRat(1000, 1)).IsInt():
		return fmt.Errorf("it must be a whole number of millicores (1m is the smallest step)")
	}
	return nil
}
