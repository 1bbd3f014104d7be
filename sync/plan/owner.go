package plan

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// SourceID returns the stable identity of a spec source: the repository
// it lives in and the spec's directory inside it, as
// "git:LOCATION" or "git:LOCATION//DIR". LOCATION is repo without scheme,
// user info or a ".git" suffix, and with the host name lower-cased, so the
// https, ssh and scp-like ("git@host:org/repo.git") spellings of one
// repository agree: "git:git.example.com/acme/apps//deploy". A local path
// or file URL becomes its absolute, cleaned path ("git:/srv/git/apps").
// dir is slash- or OS-separated and relative to the repository root; ""
// and "." mean the root.
//
// The agent's owner and a `ferry plan` run in a clone of the same
// repository (whose origin is that URL) therefore agree, and the two never
// see each other's apps as foreign.
func SourceID(repo, dir string) string {
	loc := repoLocation(repo)
	d := path.Clean("/" + filepath.ToSlash(dir))
	if d == "/" {
		return "git:" + loc
	}
	return "git:" + loc + "/" + d
}

// OwnerOf returns the owner recorded for apps that the spec from source
// (see SourceID) deploys to its target named target: "SOURCE#TARGET". Two
// targets of one spec that share a host therefore own their apps
// separately, just as two specs do.
func OwnerOf(source, target string) string {
	return source + "#" + target
}

func repoLocation(repo string) string {
	repo = strings.TrimSpace(repo)
	trim := func(p string) string {
		p = strings.TrimRight(p, "/")
		p = strings.TrimSuffix(p, ".git")
		return strings.TrimRight(p, "/")
	}
	if i := strings.Index(repo, "://"); i > 0 {
		if u, err := url.Parse(repo); err == nil {
			if u.Scheme == "file" {
				return trim(filepath.ToSlash(filepath.Clean(filepath.FromSlash(u.Path))))
			}
			p := trim(path.Clean("/" + u.Path))
			return strings.ToLower(u.Host) + p
		}
	}
	// scp-like "user@host:path" (a colon before any slash, not a Windows
	// drive letter).
	if c := strings.Index(repo, ":"); c > 1 && !strings.Contains(repo[:c], "/") {
		host := repo[:c]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		return strings.ToLower(host) + trim(path.Clean("/"+repo[c+1:]))
	}
	if abs, err := filepath.Abs(repo); err == nil {
		repo = abs
	}
	return trim(filepath.ToSlash(filepath.Clean(repo)))
}
