# A component lists the same route twice.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    routes = [
      "/",
      "/", # ERROR: Duplicate route
    ]
  }
}
