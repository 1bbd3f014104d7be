# The workload fields of a kubernetes target take what Kubernetes accepts.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}

target "k8s" {
  type     = "kubernetes"
  apps     = ["hello"]
  image    = "ghcr.io/ferry host:v1" # ERROR: Invalid image
  replicas = 0                       # ERROR: Invalid replicas
  node_selector = {
    "Bad Key" = "x" # ERROR: Invalid label
    ok        = "-" # ERROR: Invalid label
  }
  image_pull_secrets = ["Pull_Secret"] # ERROR: Invalid secret name

  resources {
    cpu    = "100 m" # ERROR: Invalid quantity
    memory = "128mi" # ERROR: Invalid quantity
  }

  toleration {
    operator = "Sometimes" # ERROR: Invalid toleration
  }

  toleration { # ERROR: Invalid toleration
    value = "x"
  }

  toleration {
    key      = "a"
    operator = "Exists"
    value    = "x"     # ERROR: Invalid toleration
    effect   = "Never" # ERROR: Invalid toleration
  }
}

target "auto" {
  type     = "kubernetes"
  apps     = ["hello"]
  image    = "ghcr.io/ferry-wasm/ferry-host:v1"
  replicas = 3 # ERROR: Conflicting arguments

  autoscaling { # ERROR: Missing CPU request
    min = 4
    max = 2 # ERROR: Invalid replicas
  }
}

target "quantities" {
  type  = "kubernetes"
  apps  = ["hello"]
  image = "ghcr.io/ferry-wasm/ferry-host:v1"

  resources {
    cpu    = "0.0001" # ERROR: Invalid quantity
    memory = "100m"   # ERROR: Invalid quantity
  }

  autoscaling {
    max         = 2
    cpu_percent = 0 # ERROR: Invalid percentage
  }
}
