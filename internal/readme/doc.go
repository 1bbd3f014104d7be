// Package readme reads the fenced shell blocks of ferry's README.md, and its
// test runs them: the README's commands are a test, run from a fresh copy
// of the repository with real binaries and real background processes,
// exactly as a reader would paste them.
//
// Blocks splits a Markdown file into its fenced code blocks and Commands
// splits a shell block into command lines, each with its trailing comment;
// a comment "exit N: ..." states the exit code the line is expected to
// end with. The package has no state; its functions are safe for
// concurrent use.
package readme
