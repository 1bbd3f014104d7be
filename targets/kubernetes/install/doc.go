// Package install renders, and applies, what runs the ferry agent inside a
// Kubernetes cluster: its Namespace, ServiceAccount, least-privilege RBAC,
// Service and Deployment (`ferry install kubernetes`).
//
// The RBAC is the least the agent needs: in its own namespace, the Lease of
// leader election and get and update of the one ConfigMap of its durable
// state (ferry-agent-state, which the install creates empty, so the agent
// may create no ConfigMap there and read no other); in each namespace it
// deploys apps to, exactly the kinds the Kubernetes target renders
// (Deployments, Services, ConfigMaps, Secrets, HorizontalPodAutoscalers and
// SpinApps); cluster-wide, reading two CRDs and SpinAppExecutors, for the
// SpinKube preflight. Nothing else: no cluster-admin, no wildcard.
//
// Objects apply with server-side apply, field manager "ferry", as every
// object ferry writes.
package install
