# Trust keys must exist inside the spec directory and be PEM public keys.
trust {
  keys = [
    "./cosign.pub",
    "./missing.pub",   # ERROR: Trust key not found
    "./not-a-key.pub", # ERROR: Invalid trust key
  ]
}
