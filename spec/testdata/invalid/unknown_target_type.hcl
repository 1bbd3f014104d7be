# Target types are host, kubernetes and fleet.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "vm" {
  type = "vm" # ERROR: Unknown target type
  apps = ["hello"]
}
