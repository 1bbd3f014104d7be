# Two targets with the same name.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type     = "host"
  apps     = ["hello"]
  endpoint = "http://127.0.0.1:8081"
}

target "local" { # ERROR: Duplicate target
  type     = "host"
  apps     = ["hello"]
  endpoint = "http://127.0.0.1:8082"
}
