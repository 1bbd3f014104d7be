;; Imports env.foo, which ferry-host does not offer: the builder refuses it.
(module
  (import "env" "foo" (func $foo))
  (import "ferry" "nope" (func $nope))
  (func (export "_start") (call $foo) (call $nope)))
