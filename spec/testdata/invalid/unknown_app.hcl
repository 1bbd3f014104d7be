# A target naming an app that is not declared.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type     = "host"
  apps     = ["hello", "helo"] # ERROR: Unknown app
  endpoint = "http://127.0.0.1:8081"
}
