# Ratios are between 0 and 1.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "edge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    health_gate {
      success_ratio = 99 # ERROR: Invalid ratio
    }
    abort {
      failure_ratio = -0.1 # ERROR: Invalid ratio
      min_sample    = -3   # ERROR: Invalid minimum sample
    }
    rate_limit = 2.5 # ERROR: Invalid rate limit
  }
}
