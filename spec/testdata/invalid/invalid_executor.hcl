# Executors are wagi and reactor.
app "hello" {
  component "web" {
    wasm     = "./hello.wasm"
    executor = "command" # ERROR: Invalid executor
  }
}
