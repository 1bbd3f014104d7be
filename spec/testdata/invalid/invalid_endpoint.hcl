# Host endpoints are http(s) base URLs.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type     = "host"
  apps     = ["hello"]
  endpoint = "127.0.0.1:8081" # ERROR: Invalid endpoint
}

target "many" {
  type = "host"
  apps = ["hello"]
  endpoints = [
    "https://a.example.com:8443",
    "ftp://b.example.com",        # ERROR: Invalid endpoint
    "https://a.example.com:8443", # ERROR: Duplicate endpoint
  ]
}
