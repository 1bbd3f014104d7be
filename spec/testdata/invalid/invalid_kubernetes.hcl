# Kubernetes namespaces are DNS labels; modes are host and spinapp.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "k8s" {
  type       = "kubernetes" # ERROR: Missing trust keys
  apps       = ["hello"]
  image      = "ghcr.io/ferry-wasm/ferry-host:v1"
  kubeconfig = "~/.kube/config"
  namespace  = "My_Apps" # ERROR: Invalid namespace
  mode       = "pod"     # ERROR: Invalid kubernetes mode
  context    = ""        # ERROR: Empty value
}
