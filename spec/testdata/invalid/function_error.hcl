# Function calls that fail.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      WIDE  = format("%99999999s", "x") # ERROR: Invalid function argument
      UPPER = upper()                   # ERROR: Not enough function arguments
      RE    = regex("(", "x")           # ERROR: Invalid function argument
    }
  }
}
