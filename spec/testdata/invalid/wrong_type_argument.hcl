# Each target type has its own arguments.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type       = "host"
  apps       = ["hello"]
  endpoint   = "http://127.0.0.1:8081"
  kubeconfig = "~/.kube/config" # ERROR: Argument not valid for target type
  rollout {                     # ERROR: Block not valid for target type
    wave {
      percent = 100
    }
  }
}

target "k8s" {            # ERROR: Missing image
  type     = "kubernetes" # ERROR: Missing trust keys
  apps     = ["hello"]
  selector = "region=eu" # ERROR: Argument not valid for target type
}

target "edge" {
  type      = "fleet"
  apps      = ["hello"]
  token_env = "TOKEN" # ERROR: Argument not valid for target type
}
