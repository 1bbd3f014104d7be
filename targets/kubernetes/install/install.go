package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/ferry-wasm/ferry/targets/kubernetes/kubeconfig"
)

// FieldManager is the server-side apply field manager of everything ferry
// writes to a cluster.
const FieldManager = "ferry"

// Names of the objects rendered.
const (
	Name      = "ferry-agent"
	DefaultNS = "ferry-system"
	APIPort   = 8090
	// StateConfigMap holds the agent's durable state (ferry agent
	// --state-configmap); the install creates it empty, so the agent needs
	// only get and update on it.
	StateConfigMap = "ferry-agent-state"
	tokenSecret    = "ferry-agent-token"
	keySecret      = "ferry-signing-key"
)

// Options say what to install.
type Options struct {
	// Namespace is the agent's own (default DefaultNS).
	Namespace string
	// Image is the ferry image the agent runs (required), by digest for a
	// reproducible install.
	Image string
	// Replicas of the agent (default 2: one leads, one waits).
	Replicas int32
	// Repo, Branch and Path are ferry agent's --repo (required), --branch
	// and --path.
	Repo, Branch, Path string
	// TargetNamespaces are the namespaces the agent may deploy apps to
	// (default ["default"]).
	TargetNamespaces []string
	// Interval is ferry agent's --interval ("" leaves its default).
	Interval string
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (o *Options) defaults() error {
	if o.Namespace == "" {
		o.Namespace = DefaultNS
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if len(o.TargetNamespaces) == 0 {
		o.TargetNamespaces = []string{"default"}
	}
	switch {
	case o.Image == "":
		return errors.New("install: the agent's image is required (--image)")
	case o.Repo == "":
		return errors.New("install: the spec repository is required (--repo)")
	case o.Replicas < 1:
		return fmt.Errorf("install: replicas must be at least 1, not %d", o.Replicas)
	}
	for _, ns := range append([]string{o.Namespace}, o.TargetNamespaces...) {
		if !dnsLabel.MatchString(ns) {
			return fmt.Errorf("install: %q is not a namespace name (lower-case letters, digits and '-', at most 63)", ns)
		}
	}
	return nil
}

// labels are put on every object.
func labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       Name,
		"app.kubernetes.io/component":  "agent",
		"app.kubernetes.io/part-of":    "ferry",
		"app.kubernetes.io/managed-by": "ferry",
	}
}

func meta0(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels()}
}

// AppRules are the rules the agent holds in every target namespace: the
// kinds the Kubernetes target renders, and nothing else.
var AppRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"services", "configmaps", "secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"core.spinkube.dev"}, Resources: []string{"spinapps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// Objects renders every object of the install, in apply order.
func Objects(o Options) ([]runtime.Object, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ns := o.Namespace
	objs := []runtime.Object{
		&corev1.Namespace{TypeMeta: tm("v1", "Namespace"), ObjectMeta: meta0(ns, "")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta0(Name, ns)},
		&rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta0(Name, ns), Rules: []rbacv1.PolicyRule{
			// Leader election.
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{Name}, Verbs: []string{"get", "update"}},
			// The agent's durable state: that one ConfigMap, which the
			// install creates.
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{StateConfigMap}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		}},
		binding("Role", Name, ns),
		&corev1.ConfigMap{TypeMeta: tm("v1", "ConfigMap"), ObjectMeta: meta0(StateConfigMap, ns)},
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta0(Name, ""), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"},
				ResourceNames: []string{"spinapps.core.spinkube.dev", "spinappexecutors.core.spinkube.dev"}, Verbs: []string{"get"}},
			{APIGroups: []string{"core.spinkube.dev"}, Resources: []string{"spinappexecutors"}, Verbs: []string{"get", "list"}},
		}},
		&rbacv1.ClusterRoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta0(Name, ""),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: Name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: ns}}},
	}
	tns := append([]string(nil), o.TargetNamespaces...)
	sort.Strings(tns)
	for _, t := range tns {
		name := Name + "-apps"
		objs = append(objs,
			&rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta0(name, t), Rules: AppRules},
			&rbacv1.RoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta0(name, t),
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: ns}}})
	}
	sel := map[string]string{"app.kubernetes.io/name": Name}
	objs = append(objs,
		&corev1.Service{TypeMeta: tm("v1", "Service"), ObjectMeta: meta0(Name, ns), Spec: corev1.ServiceSpec{
			Selector: sel,
			Ports:    []corev1.ServicePort{{Name: "api", Port: APIPort, TargetPort: intstr.FromString("api")}},
		}},
		deployment(o, sel))
	return objs, nil
}

func binding(kind, name, ns string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta0(name, ns),
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: kind, Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
}

func deployment(o Options, sel map[string]string) *appsv1.Deployment {
	args := []string{"agent", "--repo", o.Repo, "--leader-elect", "--state-configmap", StateConfigMap,
		"--listen", fmt.Sprintf("0.0.0.0:%d", APIPort), "--data-dir", "/var/lib/ferry/agent",
		"--key", "/etc/ferry/signing/cosign.key", "--log-format", "json"}
	if o.Branch != "" {
		args = append(args, "--branch", o.Branch)
	}
	if o.Path != "" {
		args = append(args, "--path", o.Path)
	}
	if o.Interval != "" {
		args = append(args, "--interval", o.Interval)
	}
	t, f := true, false
	uid := int64(65532)
	opt := true
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("api")}}, PeriodSeconds: 10}
	return &appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: meta0(Name, o.Namespace), Spec: appsv1.DeploymentSpec{
		Replicas: &o.Replicas,
		Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels()},
			Spec: corev1.PodSpec{
				ServiceAccountName: Name,
				SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "agent", Image: o.Image, Args: args,
					Ports: []corev1.ContainerPort{{Name: "api", ContainerPort: APIPort}},
					Env: []corev1.EnvVar{
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "FERRY_AGENT_TOKEN_FILE", Value: "/etc/ferry/token/token"},
						{Name: "COSIGN_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: keySecret}, Key: "password", Optional: &opt}}},
					},
					ReadinessProbe:  probe,
					LivenessProbe:   probe,
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "data", MountPath: "/var/lib/ferry"}, {Name: "tmp", MountPath: "/tmp"},
						{Name: "token", MountPath: "/etc/ferry/token", ReadOnly: true},
						{Name: "signing", MountPath: "/etc/ferry/signing", ReadOnly: true},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tokenSecret, Optional: &opt}}},
					{Name: "signing", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: keySecret, Optional: &opt,
						Items: []corev1.KeyToPath{{Key: "cosign.key", Path: "cosign.key"}}}}},
				},
			},
		},
	}}
}

func tm(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// YAML renders the objects as one multi-document YAML stream.
func YAML(objs []runtime.Object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	delete(u.Object, "status")
	return u, nil
}

// ApplyTo applies the objects to the cluster named by a kubeconfig path and
// context (both empty: in-cluster, else client-go's default rules); see Apply.
func ApplyTo(ctx context.Context, kubeconfigPath, kubecontext string, objs []runtime.Object, force bool) ([]string, error) {
	cfg, err := kubeconfig.Load(kubeconfigPath, kubecontext)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return Apply(ctx, cfg, objs, force)
}

// Apply applies the objects to the cluster with server-side apply (field
// manager FieldManager; force only when force is set) and returns the
// kind/namespace/name of each, in order.
func Apply(ctx context.Context, cfg *rest.Config, objs []runtime.Object, force bool) ([]string, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	var done []string
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return done, err
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return done, fmt.Errorf("install: %s: %w", gvk.Kind, err)
		}
		data, err := u.MarshalJSON()
		if err != nil {
			return done, err
		}
		var ri dynamic.ResourceInterface = dc.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dc.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return done, fmt.Errorf("install: apply %s %s: %w", gvk.Kind, path(u), err)
		}
		done = append(done, gvk.Kind+" "+path(u))
	}
	return done, nil
}

func path(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}
