# rate_growth multiplies rate_limit at each wave: a finite factor of at
# least 1, with a rate limit to grow; rate_max caps it, not below the limit.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "shrinks" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit  = 10
    rate_growth = 0.5 # ERROR: Invalid rate growth
  }
}

target "negative" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit  = 10
    rate_growth = -2 # ERROR: Invalid rate growth
  }
}

target "huge" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit  = 10
    rate_growth = 1e400 # ERROR: Invalid rate growth
  }
}

target "unlimited" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_growth = 2 # ERROR: Rate growth without a rate limit
  }
}

target "capped-below" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit  = 10
    rate_growth = 2
    rate_max    = 5 # ERROR: Invalid rate limit
  }
}

target "cap-alone" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit = 10
    rate_max   = 50 # ERROR: Rate cap without rate growth
  }
}

target "cap-text" {
  type = "fleet"
  apps = ["hello"]
  rollout {
    rate_limit  = 10
    rate_growth = "fast" # ERROR: Incorrect value type
  }
}
