# A secret variable with a literal default would put the secret in git.
variable "api_token" {
  secret  = true
  default = "hunter2" # ERROR: Secret variable with default
}
