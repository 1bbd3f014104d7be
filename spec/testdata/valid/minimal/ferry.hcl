# The smallest spec: one app with one prebuilt component, no target.
app "hello" {
  component "web" {
    wasm = "./app.wasm"
  }
}
