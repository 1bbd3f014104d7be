# Label selectors use the Kubernetes syntax.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "edge" {
  type     = "fleet"
  apps     = ["hello"]
  selector = "region in (eu,us" # ERROR: Invalid label selector
}

target "edge2" {
  type     = "fleet"
  apps     = ["hello"]
  selector = "region=eu,,tier=edge" # ERROR: Invalid label selector
}

target "edge3" {
  type     = "fleet"
  apps     = ["hello"]
  selector = "-region=eu" # ERROR: Invalid label selector
  rollout {
    wave {
      selector = "ring ~ canary" # ERROR: Invalid label selector
    }
    wave {
      percent = 100
    }
  }
}
