# Malformed component variable templates.
variable "api_token" {
  secret = true
}

app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    variables = {
      token  = "{{ api_token" # ERROR: Invalid template
      other  = "{{ }}"        # ERROR: Invalid template
      Bad    = "x"            # ERROR: Invalid variable name
      suffix = "a}}b"         # ERROR: Invalid template
    }
  }
}
