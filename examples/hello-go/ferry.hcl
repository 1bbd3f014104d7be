# hello-go: a Go guest built by ferry (GOOS=wasip1, -buildmode=c-shared)
# and run as a reactor: initialised once, its exported handler called per
# request from a pool of instances.
#
#   ferry validate examples/hello-go

app "hello-go" {
  hosts = ["hello-go.localhost"]

  component "web" {
    go {
      package = "."
    }
    executor = "reactor"
    routes   = ["/..."]

    limits {
      memory          = "64MiB"
      timeout         = "5s"
      max_concurrency = 32
    }

    health {
      path = "/healthz"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["hello-go"]
  endpoint = "http://127.0.0.1:8081"
  # No credential here: by hand, ferry sends FERRY_HOST_TOKEN; ferry agent
  # sends the credential this names from its --credentials file:
  # credential = "local"
}
