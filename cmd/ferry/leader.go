package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/targets/kubernetes/leader"
	"github.com/ferry-wasm/ferry/targets/kubernetes/statestore"
)

// leaderFlags are ferry agent's leader-election flags: with several agent
// replicas in a cluster, only the holder of a Lease runs rounds.
type leaderFlags struct {
	enabled         bool
	namespace, name string
	kubeconfig, ctx string
	identity        string
	lease           time.Duration
	// state is --state-configmap: NAMESPACE/NAME (or NAME, in the Lease's
	// namespace) of the ConfigMap holding the agent's durable state.
	state string
}

// ns is the Lease's namespace: --leader-elect-namespace, else the pod's
// own in a cluster, else ferry-system.
func (f *leaderFlags) ns() string {
	if f.namespace != "" {
		return f.namespace
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "ferry-system"
}

// stateStore is the agent's StateStore of --state-configmap, or nil
// without it.
func (f *leaderFlags) stateStore() (agent.StateStore, error) {
	if f.state == "" {
		return nil, nil
	}
	ns, name, err := statestore.ParseRef(f.state, f.ns())
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--state-configmap: %w", err))
	}
	st, err := statestore.Open(f.kubeconfig, f.ctx, ns, name, statestore.Options{})
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--state-configmap: %w", err))
	}
	return st, nil
}

func (f *leaderFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.enabled, "leader-elect", false, "run rounds only while holding a Kubernetes Lease, so that exactly one of several agent replicas works")
	fl.StringVar(&f.namespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's own namespace in a cluster, else ferry-system)")
	fl.StringVar(&f.name, "leader-elect-lease", "ferry-agent", "name of the Lease")
	fl.StringVar(&f.kubeconfig, "leader-elect-kubeconfig", "", "kubeconfig of the cluster holding the Lease (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.ctx, "leader-elect-context", "", "kubeconfig context of the cluster holding the Lease")
	fl.StringVar(&f.identity, "leader-elect-identity", "", "this replica's name in the Lease (default $POD_NAME, else hostname and PID)")
	fl.DurationVar(&f.lease, "leader-elect-lease-duration", leader.DefaultLeaseDuration, "how long a dead leader keeps the Lease before another replica takes over")
	fl.StringVar(&f.state, "state-configmap", "", "keep the agent's durable state (pins, suspensions, host rollbacks, recent history) in this ConfigMap, NAMESPACE/NAME or NAME in the Lease's namespace, so that a new leader with an empty data directory continues where the last one stopped (same cluster as the Lease)")
}

// run calls work directly without --leader-elect, and otherwise only while
// this process leads. Losing the lease is an error (the process exits and
// its supervisor restarts it as a follower), as in Kubernetes' controllers.
func (f *leaderFlags) run(ctx context.Context, log *slog.Logger, work func(context.Context) error) error {
	if !f.enabled {
		return work(ctx)
	}
	// client-go logs through klog; send it to our logger.
	klog.SetSlogLogger(log.With("component", "client-go"))
	client, err := leader.Client(f.kubeconfig, f.ctx)
	if err != nil {
		return withCode(exitError, err)
	}
	ns := f.ns()
	id := f.identity
	if id == "" {
		id = os.Getenv("POD_NAME")
	}
	lease := f.lease
	if lease < 3*time.Second {
		return withCode(exitUsage, fmt.Errorf("--leader-elect-lease-duration: %s is shorter than 3s", lease))
	}
	var workErr error
	err = leader.Run(ctx, leader.Config{
		Client: client, Namespace: ns, Name: f.name, Identity: id, Logger: log,
		LeaseDuration: lease, RenewDeadline: lease * 2 / 3, RetryPeriod: lease / 7,
	}, func(lctx context.Context) {
		workErr = work(lctx)
	})
	if errors.Is(err, leader.ErrLost) {
		return withCode(exitError, fmt.Errorf("%w: exiting so that a restart follows the new leader", err))
	}
	if err != nil {
		return withCode(exitError, err)
	}
	if workErr != nil && !errors.Is(workErr, context.Canceled) {
		return workErr
	}
	return nil
}
