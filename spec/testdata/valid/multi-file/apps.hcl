# Apps in one file, variables in another; a value given when loading
# (want.json "vars") replaces the default.
app "builder" {
  component "rust" {
    build {
      command = "cargo build --target wasm32-wasip1 --release"
      output  = "target/wasm32-wasip1/release/app.wasm"
      workdir = "./tools"
      watch   = ["src/**/*.rs", "Cargo.toml"]
    }
    routes = ["/..."]
    env = {
      MODE = var.mode
    }
  }
}
