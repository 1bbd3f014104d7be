# Blocks that may appear only once.
app "hello" {
  deploy {
    timeout = "1m"
  }
  deploy { # ERROR: Duplicate deploy block
    auto_rollback = false
  }
  component "web" {
    wasm = "./hello.wasm"
    limits {
      memory = "1MiB"
    }
    limits { # ERROR: Duplicate limits block
      memory = "2MiB"
    }
    health {
      path = "/healthz"
    }
    health { # ERROR: Duplicate health block
      path = "/ready"
    }
  }
}

target "edge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    health_gate {
      soak = "1m"
    }
    health_gate { # ERROR: Duplicate health_gate block
      soak = "2m"
    }
  }
  rollout { # ERROR: Duplicate rollout block
  }
}
