variable "mode" {
  default = "debug"
}

variable "unused" {
  default = ""
}

target "local" {
  type     = "host"
  apps     = ["builder"]
  endpoint = "http://[::1]:8081"
}
