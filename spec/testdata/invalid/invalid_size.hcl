# Sizes are whole numbers of bytes with an optional unit.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    limits {
      memory       = "64 megabytes" # ERROR: Invalid size
      max_response = "1.5GiB"       # ERROR: Invalid size
    }
  }
  component "api" {
    wasm = "./hello.wasm"
    limits {
      memory       = "99999999999TiB" # ERROR: Invalid size
      max_response = 10.5             # ERROR: Invalid size
    }
  }
}
