# A local value declared twice, in two locals blocks.
locals {
  prefix = "/api"
}

locals {
  prefix = "/v2" # ERROR: Duplicate local value
}
