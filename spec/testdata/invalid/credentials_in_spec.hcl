# A spec names no credential: a commit chooses the target's endpoint, so a
# token from the agent's environment or files could be sent anywhere. Host
# targets name an operator's credential instead (credential = "NAME").
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type             = "host"
  apps             = ["hello"]
  endpoint         = "https://127.0.0.1:8443"
  token_env        = "FERRY_PASSWORD"     # ERROR: Credential in the spec
  token_file       = "/proc/self/environ" # ERROR: Credential in the spec
  ca_file          = "./ca.pem"           # ERROR: Credential in the spec
  client_cert_file = "./client.pem"       # ERROR: Credential in the spec
  client_key_file  = "./client.key"       # ERROR: Credential in the spec
}

target "other" {
  type       = "host"
  apps       = ["hello"]
  endpoint   = "https://127.0.0.1:8444"
  credential = "Not A Name" # ERROR: Invalid credential name
}
