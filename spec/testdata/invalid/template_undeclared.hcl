# A component variable template naming an undeclared variable.
variable "api_token" {
  secret = true
}

app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    variables = {
      token   = "{{ api_token }}"
      backend = "https://{{ backend_host }}/v1" # ERROR: Undeclared variable in template
    }
  }
}
