package main

// Exit codes of every ferry command. They follow Terraform's convention where
// one exists (plan -detailed-exitcode).
const (
	// exitOK: the command did what was asked; for validate, the spec is valid.
	exitOK = 0
	// exitError: the command failed (invalid spec, build error, bad signature,
	// unreachable registry, ...). The message on stderr says why.
	exitError = 1
	// exitUsage: the command line itself is wrong (unknown flag, missing
	// argument). For `plan -detailed-exitcode`, 2 means "changes present".
	exitUsage = 2
	// exitFormat: `fmt -check` found files that are not canonically formatted.
	exitFormat = 3
)

// exitCode is an error that carries a specific exit code.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitCode) Unwrap() error { return e.err }

// withCode wraps err so that run exits with code. A nil err with a code
// means "exit quietly with this code" (the command already printed).
func withCode(code int, err error) error { return &exitCode{code: code, err: err} }
