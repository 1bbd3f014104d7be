# Keyless identities need an issuer and a subject, exact or as patterns.
trust {
  identity {
    issuer         = "https://token.actions.githubusercontent.com"
    subject_regexp = "^https://github.com/acme/(.*$" # ERROR: Invalid regular expression
  }
  identity { # ERROR: Missing subject
    issuer = "https://accounts.google.com"
  }
  identity {
    issuer        = "https://accounts.google.com"
    issuer_regexp = "^https://accounts" # ERROR: Conflicting arguments
    subject       = "ops@example.com"
  }
}

trust { # ERROR: Duplicate trust block
  keys = ["./cosign.pub"]
}
