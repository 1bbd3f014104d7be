# Paths must stay inside the spec directory.
app "hello" {
  component "web" {
    wasm  = "../outside.wasm"                         # ERROR: Path outside the spec directory
    files = ["static/index.html", "../../etc/passwd"] # ERROR: Path outside the spec directory
  }
  component "abs" {
    wasm = "/etc/hostname" # ERROR: Path outside the spec directory
  }
  component "build" {
    build {
      command = "make"
      output  = "out/../../x.wasm"             # ERROR: Path outside the spec directory
      watch   = ["src/**/*.rs", "~/secrets/*"] # ERROR: Path outside the spec directory
    }
  }
}
