# A registry repository is host[:port]/path with lowercase path parts.
registry {
  repository = "Examples/Apps" # ERROR: Invalid repository
}
