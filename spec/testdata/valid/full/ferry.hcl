# Every block and argument of the language, with the defaults it fills in.
variable "greeting" {
  default     = "hello"
  description = "The greeting the web component answers with."
}

variable "api_token" {
  secret      = true
  description = "Token for the upstream API; resolved on the target at run time."
}

variable "replicas" {
  default = 3
}

locals {
  prefix  = "/api"
  regions = ["eu", "us"]
  env = {
    REGION_LIST = join(",", local.regions)
  }
}

registry {
  repository = "127.0.0.1:5000/examples"
  insecure   = true
}

trust {
  keys = ["./cosign.pub"]
  identity {
    issuer         = "https://token.actions.githubusercontent.com"
    subject_regexp = "^https://github.com/acme/.*$"
  }
  identity {
    issuer_regexp = "^https://accounts\\.example\\.com$"
    subject       = "release@example.com"
  }
}

app "shop" {
  hosts            = ["shop.example.com", "*.shop.example.com"]
  key_value_stores = ["default", "cache"]

  deploy {
    timeout       = "2m"
    auto_rollback = false
  }

  component "web" {
    wasm     = "./app.wasm"
    executor = "wagi"
    routes   = ["/", "/static/...", "/users/:id"]
    env = merge(local.env, {
      GREETING = upper(var.greeting)
      WELCOME  = format("%s, %s!", title(var.greeting), "world")
      REPLICAS = var.replicas
    })
    files                  = ["static/index.html", "./static/../static"]
    allowed_outbound_hosts = ["https://api.example.com", "http://127.0.0.1:8080", "*://*.cdn.example.com:*"]
    key_value_stores       = ["cache"]
    variables = {
      token    = "{{ api_token }}"
      greeting = "{{greeting}}, {{ greeting }}"
    }

    limits {
      memory          = "64MiB"
      timeout         = "5s"
      max_concurrency = 100
      max_response    = "10MiB"
    }

    health {
      path              = "/healthz"
      interval          = "15s"
      timeout           = "2s"
      failure_threshold = 2
      bake              = "60s"
    }
  }

  component "api" {
    go {
      package = "./api"
    }
    executor         = "reactor"
    routes           = ["${local.prefix}/..."]
    key_value_stores = ["default", "cache"]

    limits {
      memory       = 1048576
      timeout      = "1m30s"
      max_response = "100MB"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["shop"]
  endpoint = "http://127.0.0.1:8081"
}

target "hosts" {
  type       = "host"
  apps       = ["shop"]
  endpoints  = ["https://a.example.com:8443", "https://b.example.com:8443"]
  credential = "prod-hosts"
}

target "k8s" {
  type       = "kubernetes"
  apps       = ["shop"]
  kubeconfig = "~/.kube/config"
  context    = "prod"
  namespace  = "apps"
  mode       = "spinapp"
}

target "k8s-defaults" {
  type  = "kubernetes"
  apps  = ["shop"]
  image = "ghcr.io/ferry-wasm/ferry-host:v1"
}

target "k8s-host" {
  type               = "kubernetes"
  apps               = ["shop"]
  namespace          = "shop"
  image              = "ghcr.io/ferry-wasm/ferry-host@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  node_selector      = { "kubernetes.io/arch" = "arm64", pool = "" }
  image_pull_secrets = ["ghcr-pull", "backup.pull"]

  resources {
    cpu    = "250m"
    memory = "128Mi"
  }

  toleration {
    key      = "dedicated"
    operator = "Equal"
    value    = "wasm"
    effect   = "NoSchedule"
  }

  toleration {
    operator = "Exists"
  }

  autoscaling {
    max         = 10
    cpu_percent = 70
  }
}

target "edge" {
  type     = "fleet"
  apps     = ["shop"]
  selector = "region in (${join(",", local.regions)}), tier!=lab, gpu, !retired"

  rollout {
    wave {
      selector = "ring=canary"
    }
    wave {
      selector = "example.com/ring=early"
      percent  = 50
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
    rate_limit  = 20
    rate_growth = 1.5
    rate_max    = 200

    health_gate {
      success_ratio = 0.99
      soak          = "5m"
    }

    abort {
      failure_ratio = 0.1
      min_sample    = 10
    }

    device_timeout = "2m"
    auto_rollback  = false
  }
}

target "fleet-defaults" {
  type = "fleet"
  apps = []
}
