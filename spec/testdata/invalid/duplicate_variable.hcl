# Two variables with the same name.
variable "greeting" {
  default = "hello"
}

variable "greeting" { # ERROR: Duplicate variable
  default = "hi"
}
