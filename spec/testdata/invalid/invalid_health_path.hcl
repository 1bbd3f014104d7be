# A health path is a URL path.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    health {
      path = "healthz" # ERROR: Invalid health path
    }
  }
}
