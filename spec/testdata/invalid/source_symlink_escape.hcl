# escape.wasm is a symbolic link to a file outside the spec directory.
app "hello" {
  component "web" {
    wasm = "./escape.wasm" # ERROR: Path outside the spec directory
  }
  component "files" {
    wasm  = "./hello.wasm"
    files = ["static/index.html", "static/../escape.wasm", "generated/later.txt"] # ERROR: Path outside the spec directory
  }
}
