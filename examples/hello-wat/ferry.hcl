# hello-wat: the smallest ferry app. One WAGI component built from
# hello.wat (committed beside hello.wasm; rebuild with `make testdata`).
#
#   ferry validate examples/hello-wat
#   ferry apply examples/hello-wat      (once ferry-host runs on :8081)

variable "greeting" {
  default     = "hello"
  description = "Passed to the guest as GREETING (the WAT guest ignores it; it shows how variables flow)."
}

app "hello-wat" {
  hosts = ["hello-wat.localhost"]

  component "web" {
    wasm     = "./hello.wasm"
    executor = "wagi"
    routes   = ["/..."]
    env = {
      GREETING = upper(var.greeting)
    }

    limits {
      memory  = "1MiB"
      timeout = "2s"
    }

    # The module answers 200 on every path, so any path works as a probe.
    health {
      path = "/healthz"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["hello-wat"]
  endpoint = "http://127.0.0.1:8081"
  # No credential here: by hand, ferry sends FERRY_HOST_TOKEN; ferry agent
  # sends the credential this names from its --credentials file:
  # credential = "local"
}
