# Kubernetes namespaces are DNS labels; modes are host and spinapp.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "k8s" {
  type       = "kubernetes"
  apps       = ["hello"]
  kubeconfig = "~/.kube/config"
  namespace  = "My_Apps" # ERROR: Invalid namespace
  mode       = "pod"     # ERROR: Invalid kubernetes mode
  context    = ""        # ERROR: Empty value
}
