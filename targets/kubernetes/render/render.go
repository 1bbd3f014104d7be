package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/ferry-wasm/ferry/targets"
)

// Labels and annotations ferry puts on the objects it renders.
const (
	// LabelManagedBy is app.kubernetes.io/managed-by, always "ferry".
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "ferry"
	// LabelName is app.kubernetes.io/name, the app's name.
	LabelName = "app.kubernetes.io/name"
	// LabelOwner is ferry.dev/owner, OwnerHash of the app's owner. Its
	// presence marks an object as ferry's own: the driver never deletes
	// an object without it.
	LabelOwner = "ferry.dev/owner"
	// AnnotationOwner is ferry.dev/owner, the owner string itself.
	AnnotationOwner = "ferry.dev/owner"
	// AnnotationDigest is ferry.dev/digest, the artifact digest, on the
	// Deployment's pod template (so a new digest rolls the pods).
	AnnotationDigest = "ferry.dev/digest"
	// AnnotationRef is ferry.dev/ref, the artifact reference, on the
	// Deployment.
	AnnotationRef = "ferry.dev/ref"
)

// Container, ports and paths of the pods (the contract with ferry-host app).
const (
	// ContainerName is the pods' one container.
	ContainerName = "ferry-host"
	// HTTPPort serves the app (--listen); the Service's "http" target.
	HTTPPort = 8080
	// HealthPort serves /livez and /readyz (--health-listen).
	HealthPort = 8081
	// ServicePort is the Service's port.
	ServicePort = 80
	// TrustDir holds the trust Secret's keys (--trust-key).
	TrustDir = "/etc/ferry/trust"
	// ConfigDir holds the ConfigMap's values (--config-dir).
	ConfigDir = "/etc/ferry/config"
	// SecretsDir holds the secret values (--secrets-dir).
	SecretsDir = "/etc/ferry/secrets"
	// StateDir is ferry-host's state, an emptyDir (--state-dir).
	StateDir = "/var/lib/ferry"
	// RunAsUser is the user and group id the pods run as (the distroless
	// "nonroot" user).
	RunAsUser = 65532
)

// ErrInvalid is wrapped by the errors of options or apps that cannot be
// rendered. Retrying does not help.
var ErrInvalid = errors.New("render: invalid input")

// Options are a target's settings that shape the objects, from the spec's
// kubernetes target block. The zero value is not valid: Namespace and Image
// are required.
type Options struct {
	// Namespace the objects go to.
	Namespace string
	// Image is the ferry-host image the pods run.
	Image string
	// Replicas of the Deployment; zero means 1. Ignored when Autoscaling
	// is set (the autoscaler owns the count; the Deployment leaves
	// spec.replicas to it).
	Replicas int32
	// CPU and Memory are Kubernetes quantities used as both requests and
	// limits of the container; empty sets none.
	CPU, Memory string
	// NodeSelector of the pods; nil for none.
	NodeSelector map[string]string
	// Tolerations of the pods, in order.
	Tolerations []Toleration
	// ImagePullSecrets name Secrets used to pull Image.
	ImagePullSecrets []string
	// Autoscaling, when set, adds a HorizontalPodAutoscaler.
	Autoscaling *Autoscaling
	// TrustKeys are the trust public keys by file base name ("cosign.pub")
	// and their PEM content, put in the trust Secret. At least one.
	TrustKeys map[string][]byte
	// Executor is the SpinAppExecutor of mode "spinapp" (SpinApp); empty
	// means DefaultExecutor. Not used by App.
	Executor string
}

// Toleration is one pod toleration, with Kubernetes' fields and meaning
// (Operator "Equal" or "Exists"; empty Key and Effect match every taint
// key and effect).
type Toleration struct {
	Key, Operator, Value, Effect string
}

// Autoscaling is an autoscaling/v2 HorizontalPodAutoscaler on CPU.
type Autoscaling struct {
	// Min and Max replicas; Min zero means 1.
	Min, Max int32
	// CPUPercent is the target average utilisation of the CPU request.
	CPUPercent int32
}

// Object is one rendered object.
type Object struct {
	// Kind is the object's kind ("Deployment").
	Kind string
	// Name is the object's name.
	Name string
	// U is the object as applied: only the fields ferry sets.
	U *unstructured.Unstructured
}

// ID names the object as targets.ObjectDiff does: "Kind/namespace/name".
func (o Object) ID() string { return o.Kind + "/" + o.U.GetNamespace() + "/" + o.Name }

// ConfigMapName is the name of app's ConfigMap of variable values.
func ConfigMapName(app string) string { return app + "-config" }

// SecretsName is the name of app's Secret of secret values.
func SecretsName(app string) string { return app + "-secrets" }

// TrustSecretName is the name of app's Secret of trust keys.
func TrustSecretName(app string) string { return app + "-trust" }

// OwnerHash is the value of LabelOwner for owner: the first 20 bytes of
// its SHA-256 in hex (a label value holds at most 63 characters; an owner
// string may be longer).
func OwnerHash(owner string) string {
	s := sha256.Sum256([]byte(owner))
	return hex.EncodeToString(s[:20])
}

// Labels returns the labels every object of app carries.
func Labels(app, owner string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelName: app, LabelOwner: OwnerHash(owner)}
}

// Selector returns the labels that select app's pods (Deployment and
// Service selector; they never change, as a Deployment's selector cannot).
func Selector(app string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelName: app}
}

// InventorySelector is the label selector of every object ferry owns for
// app: its name, managed by ferry, with an owner label.
func InventorySelector(app string) string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelName + "=" + app + "," + LabelOwner
}

var keyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Args returns the ferry-host command line of the app's container.
func Args(ref string) []string {
	return []string{"app", "--ref", ref, "--trust-key", TrustDir, "--config-dir", ConfigDir,
		"--secrets-dir", SecretsDir, "--listen", fmt.Sprintf(":%d", HTTPPort),
		"--health-listen", fmt.Sprintf(":%d", HealthPort), "--state-dir", StateDir}
}

// App renders the objects of want, in apply order: ConfigMap, the two
// Secrets, Service, Deployment and, with o.Autoscaling, the
// HorizontalPodAutoscaler. want.Secrets are the secret Secret's data
// (nil: empty). Errors wrap ErrInvalid.
func App(want targets.DesiredApp, o Options) ([]Object, error) {
	if err := check(want, o); err != nil {
		return nil, err
	}
	name, ns := want.Name, o.Namespace
	labels := Labels(name, want.Owner)
	ann := map[string]string{AnnotationOwner: want.Owner}

	var objs []Object
	add := func(kind, objName string, v any) error {
		u, err := toUnstructured(v)
		if err != nil {
			return fmt.Errorf("render %s %s: %w", kind, objName, err)
		}
		objs = append(objs, Object{Kind: kind, Name: objName, U: u})
		return nil
	}

	// ConfigMap: the values of the non-secret variables.
	cm := coreac.ConfigMap(ConfigMapName(name), ns).WithLabels(labels).WithAnnotations(ann)
	data := map[string]string{}
	for _, v := range sortedKeys(want.App.Variables) {
		if vr := want.App.Variables[v]; !vr.Secret && vr.Default != nil {
			data[v] = *vr.Default
		}
	}
	cm.WithData(data)
	if err := add("ConfigMap", ConfigMapName(name), cm); err != nil {
		return nil, err
	}

	// Secret: the secret values.
	sec := coreac.Secret(SecretsName(name), ns).WithLabels(labels).WithAnnotations(ann)
	sdata := map[string][]byte{}
	for k, v := range want.Secrets {
		sdata[k] = []byte(v)
	}
	sec.WithType(corev1.SecretTypeOpaque).WithData(sdata)
	if err := add("Secret", SecretsName(name), sec); err != nil {
		return nil, err
	}

	// Secret: the trust keys.
	trust := coreac.Secret(TrustSecretName(name), ns).WithLabels(labels).WithAnnotations(ann)
	trust.WithType(corev1.SecretTypeOpaque).WithData(maps.Clone(o.TrustKeys))
	if err := add("Secret", TrustSecretName(name), trust); err != nil {
		return nil, err
	}

	// Service.
	svc := coreac.Service(name, ns).WithLabels(labels).WithAnnotations(ann)
	svc.WithSpec(coreac.ServiceSpec().WithSelector(Selector(name)).WithPorts(
		coreac.ServicePort().WithName("http").WithProtocol(corev1.ProtocolTCP).WithPort(ServicePort).WithTargetPort(intstr.FromInt32(HTTPPort))))
	if err := add("Service", name, svc); err != nil {
		return nil, err
	}

	// Deployment.
	dep, err := deployment(want, o, labels, ann)
	if err != nil {
		return nil, err
	}
	if err := add("Deployment", name, dep); err != nil {
		return nil, err
	}

	if a := o.Autoscaling; a != nil {
		hpa := autoscalingac.HorizontalPodAutoscaler(name, ns).WithLabels(labels).WithAnnotations(ann)
		hpa.WithSpec(autoscalingac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingac.CrossVersionObjectReference().WithAPIVersion("apps/v1").WithKind("Deployment").WithName(name)).
			WithMinReplicas(max(a.Min, 1)).WithMaxReplicas(a.Max).
			WithMetrics(autoscalingac.MetricSpec().WithType(autoscalingv2.ResourceMetricSourceType).WithResource(
				autoscalingac.ResourceMetricSource().WithName(corev1.ResourceCPU).WithTarget(
					autoscalingac.MetricTarget().WithType(autoscalingv2.UtilizationMetricType).WithAverageUtilization(a.CPUPercent)))))
		if err := add("HorizontalPodAutoscaler", name, hpa); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

func deployment(want targets.DesiredApp, o Options, labels, ann map[string]string) (*appsac.DeploymentApplyConfiguration, error) {
	name := want.Name
	dep := appsac.Deployment(name, o.Namespace).WithLabels(labels).WithAnnotations(ann).
		WithAnnotations(map[string]string{AnnotationRef: want.Ref})

	probe := func(path string) *coreac.ProbeApplyConfiguration {
		return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(path).WithPort(intstr.FromInt32(HealthPort))).
			WithPeriodSeconds(5).WithFailureThreshold(3)
	}
	ctr := coreac.Container().WithName(ContainerName).WithImage(o.Image).WithArgs(Args(want.Ref)...).
		WithPorts(
			coreac.ContainerPort().WithName("http").WithContainerPort(HTTPPort).WithProtocol(corev1.ProtocolTCP),
			coreac.ContainerPort().WithName("health").WithContainerPort(HealthPort).WithProtocol(corev1.ProtocolTCP)).
		WithReadinessProbe(probe("/readyz")).
		WithLivenessProbe(probe("/livez")).
		WithVolumeMounts(
			coreac.VolumeMount().WithName("trust").WithMountPath(TrustDir).WithReadOnly(true),
			coreac.VolumeMount().WithName("config").WithMountPath(ConfigDir).WithReadOnly(true),
			coreac.VolumeMount().WithName("secrets").WithMountPath(SecretsDir).WithReadOnly(true),
			coreac.VolumeMount().WithName("state").WithMountPath(StateDir),
			coreac.VolumeMount().WithName("tmp").WithMountPath("/tmp")).
		WithSecurityContext(coreac.SecurityContext().WithAllowPrivilegeEscalation(false).WithReadOnlyRootFilesystem(true).
			WithCapabilities(coreac.Capabilities().WithDrop("ALL")))
	// The root file system is read-only and the user has no home of its
	// own: caches go to the state volume, anything else to /tmp.
	ctr.WithEnv(coreac.EnvVar().WithName("HOME").WithValue("/tmp"),
		coreac.EnvVar().WithName("XDG_CACHE_HOME").WithValue(StateDir+"/cache"))
	if o.CPU != "" || o.Memory != "" {
		rl := corev1.ResourceList{}
		for rn, q := range map[corev1.ResourceName]string{corev1.ResourceCPU: o.CPU, corev1.ResourceMemory: o.Memory} {
			if q == "" {
				continue
			}
			v, err := resource.ParseQuantity(q)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q: %v", ErrInvalid, rn, q, err)
			}
			rl[rn] = v
		}
		ctr.WithResources(coreac.ResourceRequirements().WithRequests(rl).WithLimits(maps.Clone(rl)))
		if m, ok := rl[corev1.ResourceMemory]; ok {
			// The Go runtime of ferry-host keeps its heap under the
			// container's memory limit (GOMEMLIMIT, in bytes).
			ctr.WithEnv(coreac.EnvVar().WithName("GOMEMLIMIT").WithValue(strconv.FormatInt(m.Value(), 10)))
		}
	}

	optional := false
	pod := coreac.PodSpec().WithContainers(ctr).WithVolumes(
		coreac.Volume().WithName("trust").WithSecret(coreac.SecretVolumeSource().WithSecretName(TrustSecretName(name)).WithOptional(optional)),
		coreac.Volume().WithName("config").WithConfigMap(coreac.ConfigMapVolumeSource().WithName(ConfigMapName(name)).WithOptional(optional)),
		coreac.Volume().WithName("secrets").WithSecret(coreac.SecretVolumeSource().WithSecretName(SecretsName(name)).WithOptional(optional)),
		coreac.Volume().WithName("state").WithEmptyDir(coreac.EmptyDirVolumeSource()),
		coreac.Volume().WithName("tmp").WithEmptyDir(coreac.EmptyDirVolumeSource()),
	).
		// The "restricted" Pod Security Standard: a fixed unprivileged
		// user (whatever the image's default), no privilege escalation,
		// no capabilities, the runtime's seccomp profile, and a read-only
		// root file system (state and /tmp are emptyDirs).
		WithSecurityContext(coreac.PodSecurityContext().WithRunAsNonRoot(true).WithRunAsUser(RunAsUser).WithRunAsGroup(RunAsUser).
			WithFSGroup(RunAsUser).WithSeccompProfile(coreac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithAutomountServiceAccountToken(false)
	if len(o.NodeSelector) > 0 {
		pod.WithNodeSelector(o.NodeSelector)
	}
	for _, t := range o.Tolerations {
		tol := coreac.Toleration()
		if t.Key != "" {
			tol.WithKey(t.Key)
		}
		tol.WithOperator(corev1.TolerationOperator(t.Operator))
		if t.Value != "" {
			tol.WithValue(t.Value)
		}
		if t.Effect != "" {
			tol.WithEffect(corev1.TaintEffect(t.Effect))
		}
		pod.WithTolerations(tol)
	}
	for _, s := range o.ImagePullSecrets {
		pod.WithImagePullSecrets(coreac.LocalObjectReference().WithName(s))
	}

	spec := appsac.DeploymentSpec().
		WithSelector(metaac.LabelSelector().WithMatchLabels(Selector(name))).
		WithTemplate(coreac.PodTemplateSpec().
			WithLabels(Selector(name)).
			WithAnnotations(map[string]string{AnnotationDigest: want.Digest}).
			WithSpec(pod))
	if o.Autoscaling == nil {
		spec.WithReplicas(max(o.Replicas, 1))
	}
	dep.WithSpec(spec)
	return dep, nil
}

// check reports what makes want and o unrenderable.
func check(want targets.DesiredApp, o Options) error {
	switch {
	case want.Name == "":
		return fmt.Errorf("%w: the app has no name", ErrInvalid)
	case want.Ref == "" || want.Digest == "":
		return fmt.Errorf("%w: app %s has no artifact reference and digest", ErrInvalid, want.Name)
	case o.Namespace == "":
		return fmt.Errorf("%w: no namespace", ErrInvalid)
	case o.Image == "":
		return fmt.Errorf("%w: no ferry-host image", ErrInvalid)
	case len(o.TrustKeys) == 0:
		return fmt.Errorf("%w: no trust keys: the pods would verify no artifact", ErrInvalid)
	case o.Autoscaling != nil && o.Autoscaling.Max < max(o.Autoscaling.Min, 1):
		return fmt.Errorf("%w: autoscaling max %d is below min %d", ErrInvalid, o.Autoscaling.Max, max(o.Autoscaling.Min, 1))
	}
	for k := range o.TrustKeys {
		if !keyRE.MatchString(k) {
			return fmt.Errorf("%w: trust key name %q is not a Secret key (letters, digits, '-', '_', '.')", ErrInvalid, k)
		}
	}
	for k := range want.Secrets {
		if !keyRE.MatchString(k) {
			return fmt.Errorf("%w: secret variable name %q is not a Secret key", ErrInvalid, k)
		}
	}
	return nil
}

func toUnstructured(v any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return u, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}

// Kinds returns the kinds an app's objects may have, in apply order; the
// driver's inventory lists each.
func Kinds() []string {
	return []string{"ConfigMap", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler"}
}
