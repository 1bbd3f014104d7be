# Sources that do not exist.
app "hello" {
  component "web" {
    wasm = "./missing.wasm" # ERROR: Source not found
  }
  component "api" {
    go {
      package = "./nope" # ERROR: Source not found
    }
  }
  component "tool" {
    build {
      command = "make"
      output  = "out/tool.wasm"
      workdir = "./no-such-dir" # ERROR: Source not found
    }
  }
}
