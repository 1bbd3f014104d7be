# A block that is never closed.
app "hello" { # ERROR: Unclosed configuration block
  component "web" {
    wasm = "./hello.wasm"
  }
