# Store names are lowercase, listed once.
app "counter" {
  key_value_stores = [
    "default",
    "Cache",   # ERROR: Invalid store name
    "default", # ERROR: Duplicate store
  ]

  component "web" {
    wasm = "./hello.wasm"
  }
}
