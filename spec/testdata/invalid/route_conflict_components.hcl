# Two components of one app claim the same route; parameter names do not
# make routes different.
app "hello" {
  component "users" {
    wasm   = "./hello.wasm"
    routes = ["/users/:id", "/..."]
  }
  component "admin" {
    wasm = "./hello.wasm"
    routes = [
      "/users/:name", # ERROR: Route conflict
      "/admin/...",
    ]
  }
}
