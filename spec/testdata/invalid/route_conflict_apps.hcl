# Two apps without hosts on one target both claim "/api/...". An exact
# route inside a prefix ("/api/status") is not a conflict: the most
# specific route wins.
app "one" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/api/...", "/"]
  }
}

app "two" {
  component "web" {
    wasm = "./hello.wasm"
    routes = [
      "/api/status",
      "/api/...", # ERROR: Route conflict
    ]
  }
}

target "local" {
  type     = "host"
  apps     = ["two", "one"]
  endpoint = "http://127.0.0.1:8081"
}

target "other" {
  type     = "host"
  apps     = ["one", "two"]
  endpoint = "http://127.0.0.1:8082"
}
