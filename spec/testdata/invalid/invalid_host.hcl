# Hosts are lowercase DNS names, without scheme, port or path.
app "hello" {
  hosts = [
    "hello.localhost",
    "http://hello.localhost", # ERROR: Invalid host name
    "Hello.com",              # ERROR: Invalid host name
    "hello.localhost:8080",   # ERROR: Invalid host name
    "*.example.com",
    "hello.localhost", # ERROR: Duplicate host
  ]
  component "web" {
    wasm = "./hello.wasm"
  }
}
