// Package render turns one app's desired state (targets.DesiredApp) and a
// Kubernetes target's options into the objects ferry server-side applies
// for it in mode "host": a Deployment of the ferry-host image running
// `ferry-host app`, a Service, a ConfigMap of the app's variable values, a
// Secret of its secret values, a Secret of the trust keys and, with
// autoscaling, an autoscaling/v2 HorizontalPodAutoscaler (the objects and
// flags of the "Kubernetes objects for mode host" contract).
//
// Rendering is pure: it reads no file and contacts no cluster, so the same
// input always gives the same objects. Every object carries ferry's labels
// (LabelManagedBy, LabelName, LabelOwner) and the owner annotation, which
// is how the driver finds an app's objects again (its inventory) and how it
// never touches objects that are not ferry's.
package render
