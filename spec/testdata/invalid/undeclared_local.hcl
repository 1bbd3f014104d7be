# A reference to a local value nobody declared.
locals {
  prefix = "/api"
}

app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["${local.prefx}/..."] # ERROR: Reference to undeclared local value
  }
}
