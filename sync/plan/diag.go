package plan

import (
	"errors"
	"fmt"
	"strings"
)

// Severity says how bad a Diagnostic is.
type Severity string

const (
	// SeverityError makes the plan (or the target it is attached to) not
	// applyable.
	SeverityError Severity = "error"
	// SeverityWarning is worth reading but does not block applying.
	SeverityWarning Severity = "warning"
	// SeverityNote is information, e.g. that an unmanaged app is left alone.
	SeverityNote Severity = "note"
)

// Diagnostic is one message for a person: a one-line summary and a
// full-sentence detail. It never holds secret values.
type Diagnostic struct {
	// Severity is error, warning or note.
	Severity Severity `json:"severity"`
	// Summary is a short, one-line description.
	Summary string `json:"summary"`
	// Detail is one or more full sentences; may be empty.
	Detail string `json:"detail,omitempty"`
	// Target names the target concerned, if any.
	Target string `json:"target,omitempty"`
	// App names the app concerned, if any.
	App string `json:"app,omitempty"`
}

// String renders d on one line: "error: target local: app hello: summary: detail".
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(string(d.Severity))
	b.WriteString(": ")
	if d.Target != "" {
		b.WriteString("target " + d.Target + ": ")
	}
	if d.App != "" {
		b.WriteString("app " + d.App + ": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": " + d.Detail)
	}
	return b.String()
}

// Diagnostics is a list of Diagnostic, in the order they were found.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic has SeverityError.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Err returns the error diagnostics joined as one error, or nil.
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs = append(errs, errors.New(d.String()))
		}
	}
	return errors.Join(errs...)
}

func errorDiag(target, app, summary string, detail string, args ...any) Diagnostic {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return Diagnostic{Severity: SeverityError, Target: target, App: app, Summary: summary, Detail: detail}
}
