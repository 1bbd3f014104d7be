package leader_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/targets/kubernetes/leader"
)

// TestHandOver: of two candidates exactly one leads; when the leader's
// apiserver access dies (its lease is no longer renewed, as when its pod
// is killed) the other takes over within the lease duration, and when a
// leader stops cleanly it releases the lease so the other takes over at
// once.
func TestHandOver(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	client := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := client.CoreV1().Namespaces().Create(context.Background(),
		&metav1ObjectNamespace, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var leading atomic.Int32
	var maxLeading atomic.Int32
	type cand struct {
		name    string
		cancel  context.CancelFunc
		led     chan struct{}
		done    chan error
		dropper *dropTransport
	}
	start := func(name string, lease time.Duration) *cand {
		cd := &cand{name: name, led: make(chan struct{}), done: make(chan error, 1), dropper: &dropTransport{}}
		cfg := rest.CopyConfig(c.Config)
		cfg.Wrap(cd.dropper.wrap)
		ctx, cancel := context.WithCancel(context.Background())
		cd.cancel = cancel
		var once sync.Once
		go func() {
			cd.done <- leader.Run(ctx, leader.Config{
				Client: kubernetes.NewForConfigOrDie(cfg), Namespace: "ferry-system", Name: "ferry-agent", Identity: name,
				LeaseDuration: lease, RenewDeadline: lease * 2 / 3, RetryPeriod: lease / 8,
			}, func(lctx context.Context) {
				n := leading.Add(1)
				for {
					m := maxLeading.Load()
					if n <= m || maxLeading.CompareAndSwap(m, n) {
						break
					}
				}
				once.Do(func() { close(cd.led) })
				<-lctx.Done()
				leading.Add(-1)
			})
		}()
		return cd
	}
	const lease = 3 * time.Second
	a := start("a", lease)
	waitCh(t, a.led, 30*time.Second, "a to lead")
	b := start("b", lease)
	time.Sleep(lease)
	select {
	case <-b.led:
		t.Fatal("b leads while a holds the lease")
	default:
	}

	// a's connection dies: it can no longer renew; b must take over
	// within about one lease duration after a's last renewal.
	died := time.Now()
	a.dropper.drop.Store(true)
	waitCh(t, b.led, 4*lease, "b to take over from a dead leader")
	t.Logf("b took over %s after a lost its connection (lease %s)", time.Since(died).Round(time.Millisecond), lease)
	select {
	case err := <-a.done:
		if !errors.Is(err, leader.ErrLost) {
			t.Fatalf("a's Run = %v, want ErrLost", err)
		}
	case <-time.After(4 * lease):
		t.Fatal("a's Run did not return after losing the lease")
	}
	a.cancel()

	// b stops cleanly: it releases the lease and c takes over at once,
	// well before a lease duration.
	c2 := start("c", 20*time.Second)
	time.Sleep(time.Second)
	stopped := time.Now()
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatalf("b's Run after cancel = %v, want nil", err)
	}
	waitCh(t, c2.led, 15*time.Second, "c to take over from a leader that released")
	t.Logf("c took over %s after b released", time.Since(stopped).Round(time.Millisecond))
	c2.cancel()
	<-c2.done
	if m := maxLeading.Load(); m != 1 {
		t.Fatalf("%d candidates led at once, want 1", m)
	}
}

func TestConfigErrors(t *testing.T) {
	if err := leader.Run(context.Background(), leader.Config{}, func(context.Context) {}); err == nil {
		t.Fatal("Run without a client succeeded")
	}
}

func waitCh(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
