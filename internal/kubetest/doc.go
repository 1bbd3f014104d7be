// Package kubetest starts a real Kubernetes control plane for tests, on
// loopback, from binaries built by scripts/testtool.sh: etcd, kube-apiserver
// and, when workloads are wanted, kube-controller-manager, kube-scheduler
// and kwok with one fake Node (kwok makes the Node Ready and plays the
// kubelet for the Pods scheduled onto it, so a Deployment reaches its ready
// replicas without containers).
//
// Start returns a Cluster with a kubeconfig file and a *rest.Config for
// client-go; every process it started is stopped, by PID, when the test
// ends. Each process logs to a file in the cluster's directory (a
// t.TempDir), and the last lines of every log are shown when the test
// fails.
//
// Nothing here is a fake: the apiserver does real server-side apply,
// admission, RBAC, CRDs and watches.
package kubetest
