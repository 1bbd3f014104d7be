# Wave percentages are whole numbers from 1 to 100.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "edge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    wave {
      percent = 0 # ERROR: Invalid percentage
    }
    wave {
      percent = 12.5 # ERROR: Invalid percentage
    }
    wave {
      percent = 150 # ERROR: Invalid percentage
    }
    wave {
      percent = 100
    }
  }
}
