# A reference to a variable nobody declared.
app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      GREETING = var.greting # ERROR: Reference to undeclared variable
    }
  }
}

variable "greeting" {
  default = "hello"
}
