# Required arguments left out.
app "hello" {
  component "web" {
    go { # ERROR: Missing required argument
    }
    health { # ERROR: Missing required argument
    }
  }
  component "tool" {
    build { # ERROR: Missing required argument
      command = "make"
    }
  }
}

target "local" { # ERROR: Missing required argument
  apps = ["hello"]
}

registry { # ERROR: Missing required argument
  insecure = true
}
