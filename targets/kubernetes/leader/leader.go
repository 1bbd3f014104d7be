package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	kc "github.com/ferry-wasm/ferry/targets/kubernetes/kubeconfig"
)

// Defaults of Config's durations: those of Kubernetes' own controllers.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLost is returned by Run when this process held the lease and lost it
// (it could not renew within the renew deadline): another replica may
// already be running rounds.
var ErrLost = errors.New("leader: lost the lease")

// Config says which lease to campaign for, as whom.
type Config struct {
	// Client reaches the apiserver. Required.
	Client kubernetes.Interface
	// Namespace and Name name the Lease. Required.
	Namespace, Name string
	// Identity names this candidate in the Lease's holderIdentity (the
	// pod's name). Empty means the hostname plus the process ID.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's; zero
	// means the Default* values. LeaseDuration must exceed RenewDeadline.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Logger gets a line when this process starts and stops leading, and
	// when another becomes leader. Nil discards.
	Logger *slog.Logger
}

// Run campaigns for the lease and runs lead while it holds it; see the
// package documentation. It returns nil when ctx ends, ErrLost when
// leadership was lost, or a configuration error at once.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context)) error {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Name == "" {
		return errors.New("leader: a client, a namespace and a lease name are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := cfg.Identity
	if id == "" {
		h, _ := os.Hostname()
		id = fmt.Sprintf("%s_%d", h, os.Getpid())
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.Namespace, cfg.Name,
		cfg.Client.CoreV1(), cfg.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	lost := false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   or(cfg.LeaseDuration, DefaultLeaseDuration),
		RenewDeadline:   or(cfg.RenewDeadline, DefaultRenewDeadline),
		RetryPeriod:     or(cfg.RetryPeriod, DefaultRetryPeriod),
		ReleaseOnCancel: true,
		Name:            cfg.Namespace + "/" + cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				log.Info("leading", "lease", cfg.Namespace+"/"+cfg.Name, "identity", id)
				lead(lctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost = true
				}
				log.Info("stopped leading", "lease", cfg.Namespace+"/"+cfg.Name, "identity", id)
			},
			OnNewLeader: func(holder string) {
				if holder != id {
					log.Info("following", "lease", cfg.Namespace+"/"+cfg.Name, "leader", holder)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	// Run returns when ctx ends or the lease is lost; lead's context is a
	// child that client-go cancels first.
	le.Run(ctx)
	if lost {
		return ErrLost
	}
	return nil
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Client returns a client for the cluster that holds the lease: the
// kubeconfig file and context given, or, when both are empty, the pod's
// in-cluster service account when running in a pod (KUBERNETES_SERVICE_HOST
// is set), else client-go's default loading rules ($KUBECONFIG, then
// ~/.kube/config) and their current context.
func Client(kubeconfig, kubecontext string) (kubernetes.Interface, error) {
	cfg, err := kc.Load(kubeconfig, kubecontext)
	if err != nil {
		return nil, fmt.Errorf("leader: cluster for the lease: %w", err)
	}
	cfg.UserAgent = "ferry-agent (leader election)"
	return kubernetes.NewForConfig(cfg)
}
