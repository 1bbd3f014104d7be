# Only var.NAME and local.NAME can be referenced.
app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = [path.root] # ERROR: Unknown reference
  }
}
