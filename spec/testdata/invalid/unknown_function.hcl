# Only pure functions exist: no file or network access.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      KEY = file("./secret.txt") # ERROR: Call to unknown function
    }
  }
}
