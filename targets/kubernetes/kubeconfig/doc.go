// Package kubeconfig turns ferry's two cluster settings — a kubeconfig path
// and a context name — into a client-go REST config, the way kubectl does.
//
// It exists so that callers outside targets/kubernetes (the CLI) name a
// cluster with plain strings and never import client-go themselves.
package kubeconfig
