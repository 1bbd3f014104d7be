# Limits may not be negative.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    limits {
      memory          = -1    # ERROR: Negative limit
      timeout         = "-5s" # ERROR: Negative limit
      max_concurrency = -10   # ERROR: Negative limit
      max_response    = -1024 # ERROR: Negative limit
    }
  }
}
