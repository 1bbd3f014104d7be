# A misspelled argument in a component.
app "hello" {
  component "web" {
    wasm  = "./hello.wasm"
    route = ["/"] # ERROR: Unsupported argument
  }
}
