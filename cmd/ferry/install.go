package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/targets/kubernetes/install"
)

func newInstallCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the ferry agent somewhere it runs by itself",
		Example: `  ferry install kubernetes --image registry.example.com/ferry@sha256:... \
    --repo https://git.example.com/acme/apps.git > ferry-agent.yaml`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newInstallKubernetesCmd(s))
	return cmd
}

func newInstallKubernetesCmd(s streams) *cobra.Command {
	var o install.Options
	var apply, force bool
	var kubeconfig, kubecontext string
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Print (or apply) the manifests that run the agent in a cluster",
		Long: `Print the manifests that run ferry agent inside a Kubernetes cluster: a
Namespace, a ServiceAccount with least-privilege RBAC (the leader Lease and
state ConfigMaps in its own namespace; exactly the kinds ferry renders in
each --target-namespace; read access to SpinKube's CRDs), a Service for the
status API and a Deployment of --replicas agents that elect a leader, so
that exactly one runs rounds.

With --apply the objects are server-side applied (field manager "ferry")
to the cluster of --kubeconfig/--context instead. The agent reads its API
token from the Secret ferry-agent-token (key "token") and its signing key
from the Secret ferry-signing-key (keys "cosign.key" and "password"); create
them first.`,
		Example: `  ferry install kubernetes --image registry.example.com/ferry@sha256:... \
    --repo https://git.example.com/acme/apps.git --target-namespace apps > ferry-agent.yaml
  kubectl apply --server-side -f ferry-agent.yaml
  ferry install kubernetes --image ... --repo ... --apply --context prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Replicas < 1 {
				return withCode(exitUsage, fmt.Errorf("--replicas must be at least 1, not %d", o.Replicas))
			}
			objs, err := install.Objects(o)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if !apply {
				y, err := install.YAML(objs)
				if err != nil {
					return withCode(exitError, err)
				}
				_, err = s.out.Write(y)
				return err
			}
			done, err := install.ApplyTo(cmd.Context(), kubeconfig, kubecontext, objs, force)
			for _, d := range done {
				fmt.Fprintf(s.out, "%s serverside-applied\n", d)
			}
			if err != nil {
				return withCode(exitError, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", "", "the ferry image the agent runs, best by digest (required)")
	f.StringVar(&o.Repo, "repo", "", "spec repository the agent watches (required)")
	f.StringVar(&o.Branch, "branch", "", "branch to deploy (default: the agent's, main)")
	f.StringVar(&o.Path, "path", "", "directory of the spec inside the repository")
	f.StringVar(&o.Interval, "interval", "", "time between rounds (default: the agent's)")
	f.StringVarP(&o.Namespace, "namespace", "n", install.DefaultNS, "the agent's namespace")
	f.Int32Var(&o.Replicas, "replicas", 2, "agent replicas (one leads at a time)")
	f.StringSliceVar(&o.TargetNamespaces, "target-namespace", []string{"default"}, "namespaces the agent may deploy apps to (repeatable)")
	f.BoolVar(&apply, "apply", false, "apply to the cluster instead of printing")
	f.BoolVar(&force, "force-conflicts", false, "with --apply, take over fields another field manager owns")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig for --apply (default $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&kubecontext, "context", "", "kubeconfig context for --apply (default: the current one)")
	cmd.MarkFlagRequired("image") //nolint:errcheck // flag exists
	cmd.MarkFlagRequired("repo")  //nolint:errcheck // flag exists
	return cmd
}
