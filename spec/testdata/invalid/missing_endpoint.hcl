# A host target needs an endpoint.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" { # ERROR: Missing host endpoint
  type = "host"
  apps = ["hello"]
}

target "many" {
  type      = "host"
  apps      = ["hello"]
  endpoints = [] # ERROR: Missing host endpoint
}
