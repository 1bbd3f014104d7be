# Environment variable names are letters, digits and "_".
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      GREETING     = "hi"
      "NOT-A-NAME" = "x" # ERROR: Invalid environment variable name
      "1ST"        = "y" # ERROR: Invalid environment variable name
    }
  }
}
