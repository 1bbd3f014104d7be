# A target lists an app twice.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type = "host"
  apps = [
    "hello",
    "hello", # ERROR: Duplicate app
  ]
  endpoint = "http://127.0.0.1:8081"
}
