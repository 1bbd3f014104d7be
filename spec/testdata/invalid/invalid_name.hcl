# Names must be lowercase DNS labels starting with a letter.
app "Hello_World" { # ERROR: Invalid name
  component "web" {
    wasm = "./hello.wasm"
  }
}

app "hello" {
  component "9lives" { # ERROR: Invalid name
    wasm = "./hello.wasm"
  }
}

target "edge-" { # ERROR: Invalid name
  type     = "host"
  apps     = ["hello"]
  endpoint = "http://127.0.0.1:8081"
}

variable "Greeting" { # ERROR: Invalid name
  default = "hello"
}
