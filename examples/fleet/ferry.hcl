# fleet: one app rolled out to a fleet of edge devices in waves, with a
# health gate, an abort threshold and automatic rollback; the same app also
# runs on a bare host.
#
#   ferry validate examples/fleet

locals {
  region = "eu"
}

app "kiosk" {
  # Without hosts the kiosk would answer every host name no other app
  # claims — under ferry up, the names of the other examples whenever one
  # of them failed to deploy.
  hosts = ["kiosk.localhost"]

  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
    env = {
      REGION = local.region
    }

    limits {
      memory       = "1MiB"
      timeout      = "2s"
      max_response = "64KiB"
    }

    health {
      path = "/healthz"
    }
  }
}

# Every device labelled region=eu, except the ones held back for repairs.
target "edge" {
  type     = "fleet"
  apps     = ["kiosk"]
  selector = "region=${local.region}, !maintenance"

  rollout {
    # Devices labelled ring=canary first, then 10%, 50% and all of the fleet.
    wave {
      selector = "ring=canary"
    }
    wave {
      percent = 10
    }
    wave {
      percent = 50
    }
    wave {
      percent = 100
    }

    rate_limit = 20 # devices per minute

    health_gate {
      success_ratio = 0.99
      soak          = "5m"
    }

    abort {
      failure_ratio = 0.1
      min_sample    = 10
    }

    device_timeout = "2m"
    auto_rollback  = true
  }
}

target "local" {
  type     = "host"
  apps     = ["kiosk"]
  endpoint = "http://127.0.0.1:8081"
  # No credential here: by hand, ferry sends FERRY_HOST_TOKEN; ferry agent
  # sends the credential this names from its --credentials file:
  # credential = "local"
}
