package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

// AnnotationApplied is ferry.dev/applied, on every object ferry applies
// except the Secret of secret values: a hash of the object exactly as ferry
// applied it (without this annotation). Diff uses it to tell, without a
// request, that the object is what ferry would apply now.
const AnnotationApplied = "ferry.dev/applied"

// snapshotTTL bounds how long after an Observe its listing may serve
// Diff: a plan observes, then diffs every app at once.
const snapshotTTL = 30 * time.Second

// snapshot is one listing of every object ferry manages in the namespace,
// by "Kind/name", taken by Observe (a plan's refresh, as Terraform calls
// it). It serves each app's Diff once: a second Diff of the same app (a
// caller looking again, without a new Observe) lists afresh, so it never
// misses a change made since.
type snapshot struct {
	at   time.Time
	objs map[string]*unstructured.Unstructured
	// byApp indexes objs by their app name label, so that an app's
	// inventory is found without scanning every object.
	byApp map[string][]*unstructured.Unstructured
	used  map[string]bool // apps whose Diff it served
}

// add puts u, of kind, in s.
func (s *snapshot) add(kind string, u *unstructured.Unstructured) {
	u.SetKind(kind)
	s.objs[kind+"/"+u.GetName()] = u
	if app := u.GetLabels()[render.LabelName]; app != "" {
		s.byApp[app] = append(s.byApp[app], u)
	}
}

// snapCache holds the driver's current snapshot; Put and Delete drop it.
type snapCache struct {
	mu   sync.Mutex
	snap *snapshot
}

func (c *snapCache) drop() {
	c.mu.Lock()
	c.snap = nil
	c.mu.Unlock()
}

// withApplied returns a copy of o's object carrying AnnotationApplied, or
// o's object itself for the Secret of secret values (a hash of secret
// values must not sit in an annotation anyone may read).
func withApplied(o render.Object) (*unstructured.Unstructured, error) {
	if isSecretValues(o) {
		return o.U, nil
	}
	h, err := appliedHash(o.U)
	if err != nil {
		return nil, err
	}
	u := o.U.DeepCopy()
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationApplied] = h
	u.SetAnnotations(ann)
	return u, nil
}

// isSecretValues reports whether o is an app's Secret of secret values.
func isSecretValues(o render.Object) bool {
	return o.Kind == "Secret" && o.Name == render.SecretsName(o.U.GetLabels()[render.LabelName])
}

// appliedHash is the hash of u as JSON (map keys sorted), without
// AnnotationApplied.
func appliedHash(u *unstructured.Unstructured) (string, error) {
	c := u.DeepCopy()
	if ann := c.GetAnnotations(); ann != nil {
		delete(ann, AnnotationApplied)
		c.SetAnnotations(ann)
	}
	b, err := json.Marshal(c.Object)
	if err != nil {
		return "", fmt.Errorf("kubernetes: %s: %w", u.GetName(), err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16]), nil
}

// snapshotFor returns the listing Diff of app may use: the one the last
// Observe took, if it is younger than snapshotTTL, no Put or Delete came
// since and it has not served app yet; else a fresh one.
func (d *Driver) snapshotFor(ctx context.Context, app string) (*snapshot, error) {
	d.snaps.mu.Lock()
	defer d.snaps.mu.Unlock()
	if s := d.snaps.snap; s != nil && time.Since(s.at) < snapshotTTL && !s.used[app] {
		s.used[app] = true
		return s, nil
	}
	s, err := d.list(ctx, nil)
	if err != nil {
		return nil, err
	}
	s.used[app] = true
	d.snaps.snap = s
	return s, nil
}

// refreshSnapshot lists ferry's objects for the Diffs that follow an
// Observe, and returns the listing. deployments, when set, is every
// Deployment of the namespace, listed by Observe already: ferry's are
// taken from it instead of being listed again.
func (d *Driver) refreshSnapshot(ctx context.Context, deployments *unstructured.UnstructuredList) (*snapshot, error) {
	s, err := d.list(ctx, deployments)
	if err != nil {
		return nil, err
	}
	d.snaps.mu.Lock()
	d.snaps.snap = s
	d.snaps.mu.Unlock()
	return s, nil
}

// list lists every kind of ferry's objects once (Deployments from
// deployments when it is set: a listing of them all).
func (d *Driver) list(ctx context.Context, deployments *unstructured.UnstructuredList) (*snapshot, error) {
	s := &snapshot{at: time.Now(), objs: map[string]*unstructured.Unstructured{},
		byApp: map[string][]*unstructured.Unstructured{}, used: map[string]bool{}}
	sel := render.LabelManagedBy + "=" + render.ManagedBy
	for _, kind := range d.kinds() {
		if kind == "Deployment" && deployments != nil {
			for i := range deployments.Items {
				if u := &deployments.Items[i]; u.GetLabels()[render.LabelManagedBy] == render.ManagedBy {
					s.add(kind, u)
				}
			}
			continue
		}
		list, err := d.ri(kind).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil && kind == "SpinApp" && apierrors.IsNotFound(err) {
			continue // the cluster does not serve SpinApps (Observe and Put say what to install)
		}
		if err != nil {
			return nil, apiErr("list "+kind, err)
		}
		for i := range list.Items {
			s.add(kind, &list.Items[i])
		}
	}
	return s, nil
}

// inventoryOf is inventory read from s.
func (s *snapshot) inventoryOf(app string) ([]*unstructured.Unstructured, error) {
	sel, err := labels.Parse(render.InventorySelector(app))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, u := range s.byApp[app] {
		if sel.Matches(labels.Set(u.GetLabels())) {
			out = append(out, u)
		}
	}
	return out, nil
}

// unchanged reports whether live is, for certain, what applying o now
// would leave it: ferry last applied exactly o (AnnotationApplied), and
// every field o sets has o's value in live. False means "not known": the
// caller asks the server (a dry-run apply).
func unchanged(o render.Object, live *unstructured.Unstructured) bool {
	if live == nil {
		return false
	}
	h, err := appliedHash(o.U)
	if err != nil || live.GetAnnotations()[AnnotationApplied] != h {
		return false
	}
	return subset(o.U.Object, live.Object)
}

// subset reports whether every field of want is in got with the same value
// (lists element by element, of the same length). Empty values in want
// match absent ones; numbers compare by value.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if empty(wv) {
					continue
				}
				return false
			}
			if !subset(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		if len(w) != len(g) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	case nil:
		return true
	}
	if wf, ok := number(want); ok {
		gf, ok := number(got)
		return ok && wf == gf
	}
	return want == got
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
