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

	"github.com/ferry-wasm/ferry/targets/kubernetes/leader"
)

// leaderFlags are ferry agent's leader-election flags: with several agent
// replicas in a cluster, only the holder of a Lease runs rounds.
type leaderFlags struct {
	enabled         bool
	namespace, name string
	kubeconfig, ctx string
	identity        string
	lease           time.Duration
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
	ns := f.namespace
	if ns == "" {
		ns = "ferry-system"
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
			ns = strings.TrimSpace(string(b))
		}
	}
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
