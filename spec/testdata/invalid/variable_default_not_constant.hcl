# Variable defaults are constants: no references, no function calls.
locals {
  greeting = "hello"
}

variable "greeting" {
  default = local.greeting # ERROR: Variables not allowed
}

variable "shout" {
  default = upper("hi") # ERROR: Function calls not allowed
}
