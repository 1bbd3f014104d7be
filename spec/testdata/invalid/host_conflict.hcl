# Two apps on one target claim the same host name.
app "one" {
  hosts = ["shop.example.com", "one.example.com"]
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}

app "two" {
  hosts = ["two.example.com", "shop.example.com"] # ERROR: Host conflict
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/api/..."]
  }
}

target "local" {
  type     = "host"
  apps     = ["one", "two"]
  endpoint = "http://127.0.0.1:8081"
}
