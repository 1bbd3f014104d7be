# Routes that overlap but do not conflict: the most specific route wins.
# - An exact route or a parameter route inside another component's prefix.
# - Two apps with different host names may use the same routes.
# - An app with host names and an app without (which answers any other
#   host) may use the same routes.
app "site" {
  component "pages" {
    wasm   = "./app.wasm"
    routes = ["/..."]
  }
  component "status" {
    wasm   = "./app.wasm"
    routes = ["/status", "/users/:id", "/users/me"]
  }
  component "files" {
    wasm   = "./app.wasm"
    routes = ["/static/...", "/static/app.js"]
  }
}

app "blog" {
  hosts = ["blog.example.com"]
  component "web" {
    wasm   = "./app.wasm"
    routes = ["/..."]
  }
}

app "docs" {
  hosts = ["docs.example.com", "*.example.com"]
  component "web" {
    wasm   = "./app.wasm"
    routes = ["/..."]
  }
}

target "local" {
  type     = "host"
  apps     = ["site", "blog", "docs"]
  endpoint = "http://localhost:8081"
}
