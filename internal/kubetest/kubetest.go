package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// Versions of the tools Start runs (names for scripts/testtool.sh).
const (
	EtcdTool              = "etcd-v3.7.3"
	APIServerTool         = "kube-apiserver-v1.37.2"
	ControllerManagerTool = "kube-controller-manager-v1.37.2"
	SchedulerTool         = "kube-scheduler-v1.37.2"
	KwokTool              = "kwok-v0.8.0"
	KwokStagesFile        = "kwok-stages-v0.8.0.yaml"
)

// NodeName is the name of the fake Node that Start creates with
// Options.Workloads. It carries the label type=kwok.
const NodeName = "kwok-node-0"

// Options says what Start runs.
type Options struct {
	// Workloads also starts kube-controller-manager, kube-scheduler and kwok
	// and creates the fake Node NodeName, so that Deployments become Pods
	// that are scheduled and turn Ready. Without it the cluster is etcd and
	// kube-apiserver only: the API works, nothing reconciles.
	Workloads bool
	// Within bounds the whole start-up (every process ready, and with
	// Workloads the Node Ready). Zero means 3 minutes.
	Within time.Duration
}

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds the data, certificates, kubeconfig and logs.
	Dir string
	// Kubeconfig is the path of a kubeconfig file for the admin user
	// (group system:masters), usable by kubectl and client-go.
	Kubeconfig string
	// Config is the same credentials for client-go.
	Config *rest.Config
	// Server is the apiserver's URL, https://127.0.0.1:PORT.
	Server string
	// EtcdURL is etcd's client URL, http://127.0.0.1:PORT.
	EtcdURL string
	// StartedIn is how long Start took, from starting etcd to ready.
	StartedIn time.Duration

	t     testing.TB
	procs []*proc
}

// proc is one process Start started.
type proc struct {
	name string
	log  string // path of its log file
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

// exited reports whether the process has exited, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Start starts the control plane that opts asks for and waits until it is
// ready, failing the test with the reason and the last lines of the
// processes' logs if it is not ready within opts.Within. The processes are
// stopped when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	within := opts.Within
	if within == 0 {
		within = 3 * time.Minute
	}
	// Build (or find in the cache) every tool before the clock starts.
	etcdBin := testenv.Tool(t, EtcdTool)
	apiBin := testenv.Tool(t, APIServerTool)
	var cmBin, schedBin, kwokBin, stages string
	if opts.Workloads {
		cmBin = testenv.Tool(t, ControllerManagerTool)
		schedBin = testenv.Tool(t, SchedulerTool)
		kwokBin = testenv.Tool(t, KwokTool)
		stages = testenv.Tool(t, KwokStagesFile)
	}

	c := &Cluster{Dir: t.TempDir(), t: t}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(c.stop)
	begin := time.Now()
	deadline := begin.Add(within)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	// etcd.
	clientAddr, peerAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	c.EtcdURL = "http://" + clientAddr
	etcd := c.start("etcd", etcdBin,
		"--name", "default",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", c.EtcdURL,
		"--advertise-client-urls", c.EtcdURL,
		"--listen-peer-urls", "http://"+peerAddr,
		"--initial-advertise-peer-urls", "http://"+peerAddr,
		"--initial-cluster", "default=http://"+peerAddr,
		"--unsafe-no-fsync",
	)
	c.waitHTTP(ctx, etcd, nil, c.EtcdURL+"/health", "", `"health":"true"`)

	// Credentials: a CA and a serving certificate for 127.0.0.1, the
	// service-account key pair, and the admin token.
	caPEM := c.writeCerts()
	token := randomHex(t, 16)
	c.write("tokens.csv", token+",admin,admin,system:masters\n")

	// kube-apiserver.
	apiAddr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(apiAddr)
	c.Server = "https://" + apiAddr
	api := c.start("kube-apiserver", apiBin,
		"--etcd-servers", c.EtcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", port,
		"--cert-dir", filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file", c.path("serving.crt"),
		"--tls-private-key-file", c.path("serving.key"),
		"--token-auth-file", c.path("tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", c.path("sa.pub"),
		"--service-account-signing-key-file", c.path("sa.key"),
		// A /16: room for 65,534 Services. (It was a /24, whose 253
		// addresses made every Service past the 253rd fail with "range is
		// full": the 747 of 1,000 benchmark apps that once failed.)
		"--service-cluster-ip-range", "10.0.0.0/16",
		// Required with a loopback advertise address.
		"--endpoint-reconciler-type", "none",
	)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c.waitHTTP(ctx, api, pool, c.Server+"/readyz", token, "ok")

	c.Config = &rest.Config{
		Host:            c.Server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             100,
		Burst:           200,
	}
	c.Kubeconfig = c.path("kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["ferry-test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["ferry-test"] = &clientcmdapi.Context{Cluster: "ferry-test", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "ferry-test"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		t.Fatalf("kubetest: write kubeconfig: %v", err)
	}

	if opts.Workloads {
		cm := c.start("kube-controller-manager", cmBin,
			"--kubeconfig", c.Kubeconfig,
			"--controllers", "*",
			"--leader-elect=false",
			"--secure-port", "0",
			"--service-account-private-key-file", c.path("sa.key"),
			"--use-service-account-credentials=false",
			// kwok renews its Node's status about once a minute and keeps
			// no Lease; with the default grace (50 s) the node lifecycle
			// controller marks the Node unreachable and every Pod on it
			// NotReady after a minute, and kwok never sets them Ready
			// again. Nothing here tests node failure, so never do that.
			"--node-monitor-grace-period=1h",
			// The controllers' client defaults (20 requests/s, burst 30)
			// and five workers per controller hold a cluster to a few new
			// Deployments a second, whoever applies them: each costs about
			// a dozen requests (a ReplicaSet, a Pod, an EndpointSlice,
			// events, status updates). Operators of big clusters raise
			// them (kwokctl's own clusters do); so do these, so that a
			// benchmark measures the client that applies, not this one.
			"--kube-api-qps=1000", "--kube-api-burst=2000",
			"--concurrent-deployment-syncs=25", "--concurrent-replicaset-syncs=25",
		)
		sched := c.start("kube-scheduler", schedBin,
			"--kubeconfig", c.Kubeconfig,
			"--leader-elect=false",
			"--secure-port", "0",
			// Its default (50/s, burst 100) binds about 25 pods a second
			// (a binding and an event each); raised like the
			// controller-manager's.
			"--kube-api-qps=1000", "--kube-api-burst=2000",
		)
		kwok := c.start("kwok", kwokBin,
			"--kubeconfig", c.Kubeconfig,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--config", stages,
		)
		cs, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			t.Fatalf("kubetest: client: %v", err)
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, fakeNode(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("kubetest: create Node %s: %v", NodeName, err)
		}
		// kwok marks the Node Ready; the controller-manager creates the
		// default ServiceAccount, without which admission refuses Pods.
		c.poll(ctx, []*proc{kwok, sched, cm}, "Node "+NodeName+" Ready (set by kwok)", func() (bool, string) {
			n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					return cond.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s (%s)", cond.Status, cond.Reason)
				}
			}
			return false, "no Ready condition yet"
		})
		c.poll(ctx, []*proc{cm}, "ServiceAccount default/default (made by kube-controller-manager)", func() (bool, string) {
			_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return true, ""
		})
	}
	c.StartedIn = time.Since(begin)
	t.Logf("kubetest: cluster at %s ready in %v (workloads: %v; logs and kubeconfig in %s)",
		c.Server, c.StartedIn.Round(time.Millisecond), opts.Workloads, c.Dir)
	return c
}

// fakeNode is the Node kwok manages (selected by its annotation).
func fakeNode() *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		// Room for the benchmarks' thousands of pods (a kubelet's default is 110).
		corev1.ResourcePods: resource.MustParse("5000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
			},
		},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res},
	}
}

// path returns the path of name in the cluster's directory.
func (c *Cluster) path(name string) string { return filepath.Join(c.Dir, name) }

// write writes a file in the cluster's directory.
func (c *Cluster) write(name, data string) {
	c.t.Helper()
	if err := os.WriteFile(c.path(name), []byte(data), 0o600); err != nil {
		c.t.Fatalf("kubetest: %v", err)
	}
}

// start starts bin with args, its output going to NAME.log in the
// cluster's directory, HOME set to that directory.
func (c *Cluster) start(name, bin string, args ...string) *proc {
	c.t.Helper()
	p := &proc{name: name, log: c.path(name + ".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		c.t.Fatalf("kubetest: %v", err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = c.Dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), "HOME="+c.Dir, "KUBECONFIG=")
	// If the test binary dies without running its cleanups (a go test
	// timeout, a kill), the kernel kills the process too instead of leaving
	// it running.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("kubetest: start %s: %v", name, err)
	}
	f.Close() // the child has its own copy
	c.procs = append(c.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop stops every process, the last started first: SIGTERM to its PID,
// then SIGKILL if it is still running after 10 s. If the test failed, it
// logs the last lines of every log.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if done, _ := p.exited(); done {
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited meanwhile
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			c.t.Logf("kubetest: %s (pid %d) still running 10s after SIGTERM; killing it", p.name, p.cmd.Process.Pid)
			p.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
			<-p.done
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			c.t.Logf("kubetest: last lines of %s:\n%s", p.log, tail(p.log, 30))
		}
	}
}

// poll calls check every 100 ms until it reports true, failing the test
// with what, check's last word and the logs of watch if ctx ends or one of
// watch's processes (or an earlier one) exits first.
func (c *Cluster) poll(ctx context.Context, watch []*proc, what string, check func() (bool, string)) {
	c.t.Helper()
	last := ""
	for {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		for _, p := range c.procs {
			if done, err := p.exited(); done {
				c.t.Fatalf("kubetest: %s exited (%v) while waiting for %s; last lines of %s:\n%s",
					p.name, err, what, p.log, tail(p.log, 40))
			}
		}
		select {
		case <-ctx.Done():
			var logs strings.Builder
			for _, p := range watch {
				fmt.Fprintf(&logs, "\n--- last lines of %s:\n%s", p.log, tail(p.log, 25))
			}
			c.t.Fatalf("kubetest: no %s by the start-up deadline; last answer: %s%s", what, last, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitHTTP polls url until it answers 200 with a body containing want.
func (c *Cluster) waitHTTP(ctx context.Context, p *proc, pool *x509.CertPool, url, token, want string) {
	c.t.Helper()
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: nil},
	}
	defer client.CloseIdleConnections()
	c.poll(ctx, []*proc{p}, p.name+" ready ("+url+" answering 200 "+want+")", func() (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			return false, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return true, ""
	})
}

// writeCerts writes ca.crt, serving.crt/.key (for 127.0.0.1 and localhost)
// and the service-account key pair sa.key/sa.pub, and returns the CA in PEM.
func (c *Cluster) writeCerts() []byte {
	c.t.Helper()
	fail := func(err error) {
		c.t.Helper()
		if err != nil {
			c.t.Fatalf("kubetest: certificates: %v", err)
		}
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		fail(err)
		return k
	}
	keyPEM := func(k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		fail(err)
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ferry-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	fail(err)
	caCert, err := x509.ParseCertificate(caDER)
	fail(err)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	srvKey := newKey()
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	fail(err)

	saKey := newKey()
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	fail(err)

	c.write("ca.crt", string(caPEM))
	c.write("serving.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})))
	c.write("serving.key", keyPEM(srvKey))
	c.write("sa.key", keyPEM(saKey))
	c.write("sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub})))
	return caPEM
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return hex.EncodeToString(b)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// KubeconfigFor writes a kubeconfig for the cluster that authenticates
// with token (a ServiceAccount's, say) and returns its path.
func (c *Cluster) KubeconfigFor(t testing.TB, name, token string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["ferry-test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.Config.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["ferry-test"] = &clientcmdapi.Context{Cluster: "ferry-test", AuthInfo: name, Namespace: "default"}
	kc.CurrentContext = "ferry-test"
	path := c.path("kubeconfig-" + name)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("kubetest: write kubeconfig: %v", err)
	}
	return path
}

// StopAPIServer SIGKILLs the cluster's kube-apiserver (by its PID, as a
// crash or a lost machine would stop it) and waits until it has exited:
// from then on every request to Server is refused. etcd and the rest keep
// running.
func (c *Cluster) StopAPIServer() {
	c.t.Helper()
	for _, p := range c.procs {
		if p.name != "kube-apiserver" {
			continue
		}
		p.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
		<-p.done
		return
	}
	c.t.Fatal("kubetest: no kube-apiserver was started")
}
