// Package testenv starts the real services ferry's tests use: an in-process
// CNCF Distribution registry on loopback, and external tools (the cosign and
// oras CLIs, Distribution as a separate process) built once by
// scripts/testtool.sh and cached under $HOME/.cache/ferry-test.
//
// Tests call these helpers directly; nothing here is a fake.
package testenv
