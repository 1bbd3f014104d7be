# A secret variable's value must never reach the config: it is used as
# "{{ api_token }}" in component variables instead.
variable "api_token" {
  secret = true
}

app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      TOKEN = var.api_token # ERROR: Secret variable in expression
    }
    variables = {
      token = "{{ api_token }}"
    }
  }
}
