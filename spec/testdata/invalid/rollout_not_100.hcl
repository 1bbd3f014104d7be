# The last wave must cover the whole fleet.
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
      percent = 10
    }
    wave {
      percent = 50 # ERROR: Rollout does not reach 100%
    }
  }
}

target "edge2" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    wave {
      percent = 100
    }
    wave { # ERROR: Rollout does not reach 100%
      selector = "ring=late"
    }
  }
}
