# A kubernetes target mounts the trust keys as files of one directory.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
  }
}

trust { # ERROR: Invalid trust key
  keys = ["./cosign.pub", "./keys/cosign.pub"]
}

target "k8s" {
  type  = "kubernetes"
  apps  = ["hello"]
  image = "ghcr.io/ferry-wasm/ferry-host:v1"
}
