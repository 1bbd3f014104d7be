# executor names a SpinAppExecutor: only mode spinapp has one, and it is an object name;
# a SpinApp has no image, node selector or tolerations, so mode spinapp refuses them.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}

target "host-mode" {
  type     = "kubernetes"
  apps     = ["hello"]
  image    = "ghcr.io/ferry-wasm/ferry-host:v1"
  executor = "containerd-shim-spin" # ERROR: Executor needs mode spinapp
}

target "spin" {
  type     = "kubernetes"
  mode     = "spinapp"
  apps     = ["hello"]
  executor = "Shim_Spin" # ERROR: Invalid SpinAppExecutor name
}

target "spin-placed" {
  type          = "kubernetes"
  mode          = "spinapp"
  apps          = ["hello"]
  image         = "ghcr.io/ferry-wasm/ferry-host:v1" # ERROR: Not valid in mode spinapp
  node_selector = { zone = "a" }                     # ERROR: Not valid in mode spinapp

  toleration { # ERROR: Not valid in mode spinapp
    key      = "dedicated"
    operator = "Exists"
  }
}
