# Durations use Go syntax: "500ms", "5s", "2m", "1h30m".
app "hello" {
  deploy {
    timeout = "a while" # ERROR: Invalid duration
  }
  component "web" {
    wasm = "./hello.wasm"
    limits {
      timeout = "5 seconds" # ERROR: Invalid duration
    }
    health {
      path = "/healthz"
      bake = "a minute" # ERROR: Invalid duration
    }
  }
}

target "edge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    wave {
      percent = 100
    }
    health_gate {
      soak = "soon" # ERROR: Invalid duration
    }
    device_timeout = "0s" # ERROR: Invalid duration
  }
}
