package control

import "errors"

// errBadRequest marks input errors on the server side.
var errBadRequest = errors.New("bad request")

// errAppMismatch: the artifact holds another app than the path names.
var errAppMismatch = errors.New("artifact holds a different app")

// errPersist: deployed but the state directory could not be written.
var errPersist = errors.New("state directory write failed")

// errSkipped: Restore found nothing to restore under a name.
var errSkipped = errors.New("nothing recorded")
