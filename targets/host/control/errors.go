package control

import "errors"

// errBadRequest marks input errors of the control API's own (the apply
// lock's requests, a body that is not JSON); the core's are
// core.ErrBadRequest.
var errBadRequest = errors.New("bad request")
