// Package gittest gives tests real git repositories served on loopback:
// a bare repository behind the real `git http-backend` (run through
// net/http/cgi on 127.0.0.1:0), and working clones driven by the real git
// CLI, so that a test can commit and push exactly as a user would.
//
// Every git command runs with a private HOME, GIT_CONFIG_NOSYSTEM=1 and a
// fixed author, so the machine's own git configuration never leaks in.
// Servers and clones are removed when the test ends.
//
// With Options.TLS the server speaks https with a certificate signed by a
// test CA (NewCA), so clients can be shown to trust that CA and refuse
// others.
//
// Server.Down and Server.Up simulate an outage without giving up the port:
// while down, every connection is closed as soon as it is accepted and
// open connections are cut.
package gittest
