# Routes start with "/", have no empty segments, "..." only at the end,
# and parameters are :name.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    routes = [
      "api",           # ERROR: Invalid route
      "/a//b",         # ERROR: Invalid route
      "/a/.../b",      # ERROR: Invalid route
      "/users/:1d",    # ERROR: Invalid route
      "/trailing/",    # ERROR: Invalid route
      "/with space",   # ERROR: Invalid route
      "/../etc",       # ERROR: Invalid route
      "/ok/:id/files", # fine
    ]
  }
}
