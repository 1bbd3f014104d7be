// Package procsec hardens the process that holds ferry's secrets (the
// agent) against the code it runs for others (build commands): it marks
// the process non-dumpable, so a process of the same uid cannot read its
// /proc/<pid>/environ, mem or maps, nor attach a debugger; and it resolves
// the account builds run as.
//
// Neither step needs privileges. They are one layer; the other is running
// builds as another user (see package builder), which is what keeps a
// build away from the agent's 0600 files.
package procsec
