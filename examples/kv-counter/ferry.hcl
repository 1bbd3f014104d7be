# kv-counter: a Go reactor guest that counts requests in the app's
# key-value store "default", so the count survives restarts and upgrades.
#
#   ferry validate examples/kv-counter

app "kv-counter" {
  hosts            = ["kv-counter.localhost"]
  key_value_stores = ["default"]

  component "counter" {
    go {
      package = "."
    }
    executor         = "reactor"
    routes           = ["/..."]
    key_value_stores = ["default"]

    limits {
      memory  = "64MiB"
      timeout = "5s"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["kv-counter"]
  endpoint = "http://127.0.0.1:8081"
  # No credential here: by hand, ferry sends FERRY_HOST_TOKEN; ferry agent
  # sends the credential this names from its --credentials file:
  # credential = "local"
}
