package procsec

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Account is a local account builds can run as.
type Account struct {
	Name     string
	UID, GID uint32
}

// DefaultBuildUser is the account builds run as when the agent runs as
// root and names none.
const DefaultBuildUser = "nobody"

// BuildAccount resolves the value of `ferry agent --build-user`:
//
//   - "" picks the default: DefaultBuildUser when the process runs as
//     root, else the process's own user;
//   - "self" is the process's own user;
//   - a name or a numeric uid is looked up in the user database; "UID:GID"
//     is taken as it is.
//
// It returns nil for the process's own user (builds run without switching).
// Switching to another account needs root: a non-root process naming one
// gets an error.
func BuildAccount(v string) (*Account, error) {
	euid := os.Geteuid()
	switch v {
	case "":
		if euid != 0 {
			return nil, nil
		}
		v = DefaultBuildUser
	case "self":
		return nil, nil
	}
	var a *Account
	if u, g, ok := strings.Cut(v, ":"); ok {
		uid, err1 := strconv.ParseUint(u, 10, 32)
		gid, err2 := strconv.ParseUint(g, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("build user %q: want a user name, a uid, or UID:GID", v)
		}
		a = &Account{UID: uint32(uid), GID: uint32(gid)}
	} else {
		var u *user.User
		var err error
		if _, nerr := strconv.ParseUint(v, 10, 32); nerr == nil {
			u, err = user.LookupId(v)
		} else {
			u, err = user.Lookup(v)
		}
		if err != nil {
			return nil, fmt.Errorf("build user %q: %w", v, err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("build user %q has no numeric uid and gid", v)
		}
		a = &Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}
	}
	if int(a.UID) == euid {
		return nil, nil
	}
	if euid != 0 {
		return nil, fmt.Errorf("build user %q: switching to another user needs root (this process runs as uid %d); use --build-user self, or run the agent as root", v, euid)
	}
	return a, nil
}
