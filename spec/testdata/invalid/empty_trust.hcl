# An empty trust block would trust nobody.
trust { # ERROR: Empty trust policy
}
