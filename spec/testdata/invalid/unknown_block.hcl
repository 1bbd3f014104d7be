# A block type ferry does not know.
service "hello" { # ERROR: Unsupported block type
}
