# A component without a source.
app "hello" {
  component "web" { # ERROR: Missing component source
    routes = ["/"]
  }
}
