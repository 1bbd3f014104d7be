# Allowed outbound hosts are scheme://host[:port], as in Spin.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    allowed_outbound_hosts = [
      "https://api.example.com",
      "http://127.0.0.1:8080",
      "http://127.0.0.1:*",
      "*://*.example.com:*",
      "https://*.example.com",
      "api.example.com",                # ERROR: Invalid outbound host
      "ftp://files.example.com",        # ERROR: Invalid outbound host
      "https://api.example.com/v1",     # ERROR: Invalid outbound host
      "https://api.example.com:99999",  # ERROR: Invalid outbound host
      "*://api.example.com",            # ERROR: Invalid outbound host
      "https://api.*.example.com",      # ERROR: Invalid outbound host
      "https://*.127.0.0.1",            # ERROR: Invalid outbound host
      "https://api.example.com:1..100", # ERROR: Invalid outbound host
    ]
  }
}
