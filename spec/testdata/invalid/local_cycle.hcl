# Local values may not depend on themselves.
locals {
  a = "${local.b}/x" # ERROR: Local value cycle
  b = local.a
  c = local.c # ERROR: Local value cycle
}
