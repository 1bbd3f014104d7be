# A component may only use key-value stores its app declares.
app "counter" {
  key_value_stores = ["default"]

  component "web" {
    wasm             = "./hello.wasm"
    key_value_stores = ["default", "cache"] # ERROR: Undeclared key-value store
  }
}
