package kubeconfig

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load returns the REST config for the cluster named by path and context.
// With both empty and the process running in a pod (KUBERNETES_SERVICE_HOST
// is set) it is the pod's in-cluster service account; otherwise client-go's
// default loading rules apply ($KUBECONFIG, then ~/.kube/config), with path
// overriding them and context overriding the current context.
func Load(path, context string) (*rest.Config, error) {
	if path == "" && context == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return cfg, nil
}
