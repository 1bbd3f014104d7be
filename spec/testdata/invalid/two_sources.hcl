# A component with two sources.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    go { # ERROR: Conflicting component sources
      package = "./api"
    }
  }
}
