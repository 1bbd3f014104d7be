# Fleet-wide waves are cumulative, so percentages must strictly increase.
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
      percent = 50
    }
    wave {
      percent = 50 # ERROR: Percentages not increasing
    }
    wave {
      selector = "ring=late"
      percent  = 20
    }
    wave {
      percent = 100
    }
  }
}
