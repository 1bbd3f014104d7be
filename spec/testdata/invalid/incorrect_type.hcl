# Values of the wrong type.
app "hello" {
  hosts = 5 # ERROR: Incorrect value type
  component "web" {
    wasm   = "./hello.wasm"
    routes = "/" # ERROR: Incorrect value type
    env = {
      LIST = ["a"] # ERROR: Incorrect value type
    }
  }
}

registry {
  repository = "127.0.0.1:5000/apps"
  insecure   = "maybe" # ERROR: Incorrect value type
}
