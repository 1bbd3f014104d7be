# A non-secret variable without a default needs a value when loading.
variable "region" { # ERROR: Missing variable value
  description = "Where the app runs."
}
