# A wave needs a percent or a selector.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "edge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    wave { # ERROR: Missing wave percentage
    }
    wave {
      percent = 100
    }
  }
}
