package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Credentials are the host credentials of the machine that runs ferry (the
// agent's operator, or the person at the terminal), by name. A spec never
// holds a credential: a host target names one (credential = "prod-hosts")
// and the operator decides what that name means and which endpoints it may
// be sent to. A nil Credentials has no entries.
type Credentials map[string]*Credential

// Credential is one credential block of a credentials file: how ferry
// authenticates to, and verifies, the ferry-host control endpoints it is
// allowed for. Paths are absolute (relative ones in the file are resolved
// against the file's directory; "~/" is kept). No field holds a secret
// itself, so a Credential may be printed.
type Credential struct {
	// Name is the block's label, a name as for targets.
	Name string `json:"name"`
	// Endpoints are the control API base URLs this credential may be sent
	// to, as patterns of Go's path.Match ("*" matches within one path
	// element and never a "/"): "https://h1.example.com:8443",
	// "http://127.0.0.1:*". At least one is required: a spec chooses its
	// endpoints, so a credential bound to none could be sent anywhere.
	Endpoints []string `json:"endpoints"`
	// TokenEnv names an environment variable of ferry's process holding
	// the bearer token.
	TokenEnv string `json:"token_env,omitempty"`
	// TokenFile is a file holding the bearer token.
	TokenFile string `json:"token_file,omitempty"`
	// CAFile is a PEM bundle that verifies the endpoints' TLS certificates.
	CAFile string `json:"ca_file,omitempty"`
	// ClientCertFile is a TLS client certificate; it needs ClientKeyFile.
	ClientCertFile string `json:"client_cert_file,omitempty"`
	// ClientKeyFile is the key of ClientCertFile.
	ClientKeyFile string `json:"client_key_file,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// Allows reports whether the credential may be sent to endpoint: it
// matches one of Endpoints (a trailing "/" on either side is ignored).
func (c *Credential) Allows(endpoint string) bool {
	if c == nil {
		return false
	}
	ep := strings.TrimSuffix(endpoint, "/")
	for _, p := range c.Endpoints {
		if ok, err := path.Match(strings.TrimSuffix(p, "/"), ep); err == nil && ok {
			return true
		}
	}
	return false
}

// Names returns the credential names, sorted.
func (c Credentials) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var credentialsSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "credential", LabelNames: []string{"name"}}},
}

var credentialSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "endpoints", Required: true}, {Name: "token_env"}, {Name: "token_file"},
		{Name: "ca_file"}, {Name: "client_cert_file"}, {Name: "client_key_file"},
	},
}

// LoadCredentials reads a credentials file (HCL, see LANGUAGE.md):
//
//	credential "prod-hosts" {
//	  endpoints  = ["https://h1.example.com:8443"]
//	  token_file = "/etc/ferry/prod-hosts.token"   # or token_env = "NAME"
//	  ca_file    = "/etc/ferry/ca.pem"
//	}
//
// It returns the best-effort Credentials and every mistake as a diagnostic.
// It reads only the credentials file itself, never the files it names.
func LoadCredentials(file string) (Credentials, hcl.Diagnostics) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read credentials file",
			Detail:   fmt.Sprintf("The credentials file %q cannot be read: %s.", file, err),
		}}
	}
	return ParseCredentials(file, src)
}

// ParseCredentials is LoadCredentials for a file's contents in memory;
// filename is used in diagnostics and to resolve relative paths.
func ParseCredentials(filename string, src []byte) (Credentials, hcl.Diagnostics) {
	dir := filepath.Dir(filename)
	l := &loader{dir: dir, absDir: dir, cfg: &Config{}, ctx: &hcl.EvalContext{}}
	if a, err := filepath.Abs(dir); err == nil {
		l.absDir = a
	}
	out := Credentials{}
	f, d := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	l.diags = append(l.diags, d...)
	if f == nil || f.Body == nil {
		return out, l.diags
	}
	content, d := f.Body.Content(credentialsSchema)
	l.diags = append(l.diags, d...)
	seen := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		if !l.checkName(b, "credential", seen, nameRE, nameRule) {
			continue
		}
		if c := l.decodeCredential(b); c != nil {
			out[c.Name] = c
		}
	}
	return out, l.diags
}

func (l *loader) decodeCredential(b *hcl.Block) *Credential {
	content, d := b.Body.Content(credentialSchema)
	l.diags = append(l.diags, d...)
	c := &Credential{Name: b.Labels[0], DeclRange: b.DefRange}
	attrs := content.Attributes
	if a := attrs["endpoints"]; a != nil {
		items, ok := l.strList(a, "endpoints")
		if ok && len(items) == 0 {
			l.diags = append(l.diags, errDiag(a.Expr.Range(), "Missing endpoints",
				"Credential %q lists no endpoints; name the control API URLs it may be sent to, so a spec cannot send it to an endpoint of its choosing.", c.Name))
		}
		for _, it := range items {
			if _, err := path.Match(it.val, ""); err != nil {
				l.diags = append(l.diags, errDiag(it.rng, "Invalid endpoint pattern",
					"The endpoint pattern %q is not a valid pattern: %s.", it.val, err))
				continue
			}
			if err := checkEndpoint(strings.ReplaceAll(it.val, "*", "0")); err != nil {
				l.diags = append(l.diags, errDiag(it.rng, "Invalid endpoint",
					"The endpoint %q is not valid: %s. Write a base URL such as \"https://host.example.com:8443\".", it.val, err))
				continue
			}
			c.Endpoints = append(c.Endpoints, it.val)
		}
	}
	te, tf := attrs["token_env"], attrs["token_file"]
	switch {
	case te != nil && tf != nil:
		l.diags = append(l.diags, errDiag(tf.NameRange, "Conflicting arguments",
			"Set either token_env or token_file in a credential, not both."))
	case te != nil:
		if s, ok := l.str(te, "token_env"); ok {
			if envNameRE.MatchString(s) {
				c.TokenEnv = s
			} else {
				l.diags = append(l.diags, errDiag(te.Expr.Range(), "Invalid environment variable name",
					"token_env names the environment variable holding the token; %q is not a variable name.", s))
			}
		}
	case tf != nil:
		if s, ok := l.nonEmpty(tf); ok {
			c.TokenFile = l.credPath(s)
		}
	}
	if a := attrs["ca_file"]; a != nil {
		if s, ok := l.nonEmpty(a); ok {
			c.CAFile = l.credPath(s)
		}
	}
	cc, ck := attrs["client_cert_file"], attrs["client_key_file"]
	switch {
	case cc != nil && ck == nil:
		l.diags = append(l.diags, errDiag(cc.NameRange, "Incomplete client certificate",
			"client_cert_file needs client_key_file too."))
	case ck != nil && cc == nil:
		l.diags = append(l.diags, errDiag(ck.NameRange, "Incomplete client certificate",
			"client_key_file needs client_cert_file too."))
	case cc != nil:
		if s, ok := l.nonEmpty(cc); ok {
			c.ClientCertFile = l.credPath(s)
		}
		if s, ok := l.nonEmpty(ck); ok {
			c.ClientKeyFile = l.credPath(s)
		}
	}
	return c
}
