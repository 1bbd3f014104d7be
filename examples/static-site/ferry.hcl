# static-site: a Go WAGI guest (plain wasip1 command, a fresh instance per
# request) that serves the files of static/. The component declares them
# with `files`; they travel in the app artifact as a files layer and
# ferry-host preopens them read-only at "/" for the guest.
#
#   ferry validate examples/static-site

app "static-site" {
  hosts = ["static-site.localhost"]

  component "web" {
    go {
      package = "."
    }
    executor = "wagi"
    routes   = ["/..."]
    files    = ["static/"]

    limits {
      memory  = "64MiB"
      timeout = "5s"
    }

    health {
      path = "/healthz"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["static-site"]
  endpoint = "http://127.0.0.1:8081"
  # No credential here: by hand, ferry sends FERRY_HOST_TOKEN; ferry agent
  # sends the credential this names from its --credentials file:
  # credential = "local"
}
