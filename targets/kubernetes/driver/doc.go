// Package driver is the Kubernetes target, in mode "host" and "spinapp": it implements
// targets.Target by server-side applying the objects package render makes
// of an app (field manager "ferry") to one namespace of a cluster, and
// reads the cluster's own status back.
//
//   - Put applies the app's objects, prunes the objects of the app that the
//     spec no longer has (the HorizontalPodAutoscaler once autoscaling is
//     removed), and waits for the Deployment's rollout: observedGeneration,
//     updated and available replicas and its Progressing condition. A
//     rollout that is still on its way when Options.RolloutWait ends is
//     PhaseProgressing; one past its progress deadline is an error.
//   - Conflicts: an object that ferry already manages (it has ferry's owner
//     label and managed fields of manager "ferry") is applied with force,
//     so that a field edited by hand (kubectl scale, kubectl set env) goes
//     back to the spec's value. An object ferry does not manage yet — made
//     by someone else under the same name — is applied without force, and
//     a conflict is a *ConflictError naming the other manager and field,
//     unless Options.ForceConflicts is set. Turning autoscaling on hands
//     spec.replicas over (HandoverManager) at its live value.
//   - Observe lists the namespace's Deployments: those with ferry's labels
//     are managed apps, the others are reported with Managed false. The
//     digest is the pod template's ferry.dev/digest annotation.
//   - Delete deletes exactly the objects that carry the app's name, ferry's
//     managed-by label and ferry's owner label (the inventory); an object
//     without them is never touched, whatever its name.
//   - Diff (targets.Differ) dry-runs the apply on the server and compares the
//     result with the live object on the fields manager "ferry" manages in
//     it, so defaults the server fills in are never drift; the Secret of
//     secret values is compared by hash only (SecretHashes), never by value.
//
// In mode "spinapp" (Options.Mode ModeSpinApp) the same machinery applies a
// Secret of secret values and a SpinKube SpinApp per app (see
// render.SpinApp), whose image is the Spin OCI app Options.SpinImages makes
// of the artifact and Put pushes first (Diff only computes its digest). Put
// and Diff first check that the cluster serves SpinApps, that the
// SpinAppExecutor exists in the namespace and that no component uses the
// reactor executor (errors wrap ErrSpinKube or render.ErrInvalid); health is
// the SpinApp's Available condition and status.readyReplicas (SpinPhase);
// Observe lists SpinApps (a cluster without the CRDs is an ErrSpinKube error, so a plan of the target says what to install).
//
// The driver also implements targets.SecretHasher and targets.OwnerRecorder.
// It is safe for concurrent use.
package driver
