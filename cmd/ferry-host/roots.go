package main

// The ferry-host image has an empty base: no /etc/ssl/certs. Go falls back
// to this bundle of Mozilla's root certificates only when the system has
// none, so the host reaches HTTPS registries from that image too, and a
// machine's own roots still win everywhere else.
import _ "golang.org/x/crypto/x509roots/fallback"
