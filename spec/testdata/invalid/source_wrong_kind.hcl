# A Go package must be a directory; a Wasm file must be a file.
app "hello" {
  component "web" {
    wasm = "./api" # ERROR: Not a file
  }
  component "api" {
    go {
      package = "./hello.wasm" # ERROR: Not a directory
    }
  }
}
