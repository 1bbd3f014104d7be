package statestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kc "github.com/ferry-wasm/ferry/targets/kubernetes/kubeconfig"
)

// Key is the binaryData key of the state in the ConfigMap.
const Key = "state.json.gz"

// FieldManager is the field manager of the state's updates: not the
// "ferry" that applies the install, so that re-applying the install never
// owns (and never clears) the state.
const FieldManager = "ferry-agent-state"

// DefaultMaxBytes is ConfigMap.MaxBytes' default: under the apiserver's
// 1 MiB limit on a ConfigMap's data, with room to spare.
const DefaultMaxBytes = 900 << 10

// ConfigMap is a state store in one ConfigMap. Create it with New. It is
// safe for concurrent use (calls are serialised).
type ConfigMap struct {
	client          kubernetes.Interface
	namespace, name string
	maxBytes        int

	mu   sync.Mutex
	last *corev1.ConfigMap // as last read or written; nil when unknown
}

// Options are New's optional settings; the zero value of each field is
// its default.
type Options struct {
	// MaxBytes is the largest state Save takes. Zero means
	// DefaultMaxBytes.
	MaxBytes int
}

// New returns the store of ConfigMap namespace/name, reached through
// client. It contacts nothing yet.
func New(client kubernetes.Interface, namespace, name string, o Options) (*ConfigMap, error) {
	if client == nil || namespace == "" || name == "" {
		return nil, errors.New("statestore: a client, a namespace and a ConfigMap name are required")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return &ConfigMap{client: client, namespace: namespace, name: name, maxBytes: o.MaxBytes}, nil
}

// Open is New with a client of the cluster of kubeconfig and kubecontext
// (empty: in-cluster, else $KUBECONFIG or ~/.kube/config).
func Open(kubeconfig, kubecontext, namespace, name string, o Options) (*ConfigMap, error) {
	cfg, err := kc.Load(kubeconfig, kubecontext)
	if err != nil {
		return nil, fmt.Errorf("statestore: cluster for the state: %w", err)
	}
	cfg.UserAgent = "ferry-agent (state)"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("statestore: %w", err)
	}
	return New(client, namespace, name, o)
}

// ParseRef splits "NAMESPACE/NAME" (or "NAME", in defaultNS).
func ParseRef(ref, defaultNS string) (namespace, name string, err error) {
	ns, n, ok := strings.Cut(ref, "/")
	if !ok {
		ns, n = defaultNS, ref
	}
	if ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("statestore: %q is not NAMESPACE/NAME", ref)
	}
	return ns, n, nil
}

// String is "configmap NAMESPACE/NAME".
func (c *ConfigMap) String() string { return "configmap " + c.namespace + "/" + c.name }

// MaxBytes is the largest state Save takes.
func (c *ConfigMap) MaxBytes() int { return c.maxBytes }

// Load returns the saved state, or nil when the ConfigMap does not exist
// or holds none yet.
func (c *ConfigMap) Load(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cm, err := c.client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.last = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("statestore: read %s: %w", c, err)
	}
	c.last = cm
	b := cm.BinaryData[Key]
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// Save replaces the saved state with state: an update with the
// resourceVersion last seen, then on a conflict one more read and update;
// a ConfigMap that does not exist is created. A state larger than
// MaxBytes is refused without contacting the apiserver.
func (c *ConfigMap) Save(ctx context.Context, state []byte) error {
	if len(state) > c.maxBytes {
		return fmt.Errorf("statestore: %s: state of %d bytes is over the limit of %d", c, len(state), c.maxBytes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cms := c.client.CoreV1().ConfigMaps(c.namespace)
	for attempt := 0; ; attempt++ {
		cm, err := c.current(ctx)
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: c.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "ferry", "app.kubernetes.io/component": "agent-state"}},
				BinaryData: map[string][]byte{Key: state}}
			created, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) && attempt == 0 {
				continue
			}
			if err != nil {
				return fmt.Errorf("statestore: create %s: %w", c, err)
			}
			c.last = created
			return nil
		}
		if err != nil {
			return fmt.Errorf("statestore: read %s: %w", c, err)
		}
		cm = cm.DeepCopy()
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		cm.BinaryData[Key] = state
		updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt == 0 {
			c.last = nil // read it again
			continue
		}
		if err != nil {
			c.last = nil
			return fmt.Errorf("statestore: update %s: %w", c, err)
		}
		c.last = updated
		return nil
	}
}

// current is the ConfigMap to update: the one last seen (its
// resourceVersion makes the update a compare-and-swap), or the one the
// apiserver has now when none was seen.
func (c *ConfigMap) current(ctx context.Context) (*corev1.ConfigMap, error) {
	if c.last != nil {
		return c.last, nil
	}
	return c.client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
}
