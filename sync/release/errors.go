package release

import "errors"

// The release step's sentinel errors.

// ErrInvalidSpec means the spec did not load; the release's Diagnostics say
// why, each with file:line:col. Nothing was built, pushed or signed.
var ErrInvalidSpec = errors.New("invalid spec")

// ErrNoRepository means neither the spec's registry block nor the options
// name a repository to push to.
var ErrNoRepository = errors.New("no registry repository")
