# A host target reads its token from an environment variable or a file,
# not both; a client certificate needs its key.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

target "local" {
  type             = "host"
  apps             = ["hello"]
  endpoint         = "https://127.0.0.1:8443"
  token_env        = "FERRY_HOST_TOKEN"
  token_file       = "./token"      # ERROR: Conflicting arguments
  client_cert_file = "./client.pem" # ERROR: Incomplete client certificate
}

target "other" {
  type      = "host"
  apps      = ["hello"]
  endpoint  = "https://127.0.0.1:8444"
  token_env = "not a name" # ERROR: Invalid environment variable name
}
