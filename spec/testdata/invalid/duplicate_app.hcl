# Two apps with the same name, the second one is reported.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

app "hello" { # ERROR: Duplicate app
  component "web" {
    wasm = "./hello.wasm"
  }
}
