# escape.wasm is a symbolic link to a file outside the spec directory.
app "hello" {
  component "web" {
    wasm = "./escape.wasm" # ERROR: Path outside the spec directory
  }
}
