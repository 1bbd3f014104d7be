# Only one registry block per spec.
registry {
  repository = "127.0.0.1:5000/examples"
}

registry { # ERROR: Duplicate registry block
  repository = "ghcr.io/acme/apps"
}
