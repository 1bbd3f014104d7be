# Two components with the same name in one app.
app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/"]
  }
  component "web" { # ERROR: Duplicate component
    wasm   = "./hello.wasm"
    routes = ["/api/..."]
  }
}
