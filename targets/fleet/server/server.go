package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// Prefixes of the secrets the server hands out, so that a leaked one is
// recognisable (and scanners can find them).
const (
	tokenPrefix      = "ferry-enroll-"
	credentialPrefix = "ferry-device-"
)

// Options configure a Server. The zero value of each field is its default.
type Options struct {
	// Now is the server's clock: last-seen and report times, token
	// expiry. Nil means time.Now. The fleet controller must use the same
	// clock, since the rollout engine compares report times with its own.
	Now func() time.Time
	// Logger receives one line per enrollment, revocation and store error;
	// never a token, credential or value. Nil discards.
	Logger *slog.Logger
	// StoreWriters is how many store writes (a device record or
	// tokens.json: write, fsync, rename, fsync of the directory) run at
	// once; the other requests wait for a turn. Each write blocked in
	// fsync holds an OS thread, which the Go runtime never gives back:
	// unbounded, 10,000 devices reporting at once made thousands of them
	// (about 50 KiB of resident memory each). Zero means
	// DefaultStoreWriters.
	StoreWriters int
}

// DefaultStoreWriters is the default of Options.StoreWriters.
const DefaultStoreWriters = 16

// Server is the device API and the device inventory over one store
// directory. It is safe for concurrent use.
type Server struct {
	dir string
	now func() time.Time
	log *slog.Logger

	// tokenMu serialises token changes and their writes of tokens.json.
	tokenMu sync.Mutex

	mu      sync.Mutex
	tokens  map[string]*tokenRecord // by token ID
	devices map[string]*device      // by device ID
	creds   map[string]string       // credential hash → device ID (not revoked)
	subs    map[*subscriber]struct{}
	// lastValues is the values map SetDesiredApp last stored, shared by
	// the devices given equal values.
	lastValues map[string]string

	// writes holds a token per store write in progress (Options.StoreWriters).
	writes chan struct{}
}

type subscriber struct{ ch chan struct{} }

// device is one device in memory: its persisted record and its desired
// state. Fields are guarded by Server.mu, except writeMu.
type device struct {
	rec     deviceRecord
	writeMu sync.Mutex
	// apps are the desired apps by slot (see SetDesiredApp).
	apps    map[string]api.DesiredApp
	version string
	// changed is closed (and replaced) whenever version changes or the
	// device is revoked, waking its long-polls.
	changed chan struct{}
}

func newDevice(rec deviceRecord) *device {
	d := &device{rec: rec, apps: map[string]api.DesiredApp{}, changed: make(chan struct{})}
	d.version = versionOf(nil)
	return d
}

// Open opens (creating it when missing) the store in dir and returns the
// server over it. Errors wrap ErrStore.
func Open(dir string, opts Options) (*Server, error) {
	s := &Server{
		dir:     dir,
		now:     opts.Now,
		log:     opts.Logger,
		tokens:  map[string]*tokenRecord{},
		devices: map[string]*device{},
		creds:   map[string]string{},
		subs:    map[*subscriber]struct{}{},
	}
	n := opts.StoreWriters
	if n <= 0 {
		n = DefaultStoreWriters
	}
	s.writes = make(chan struct{}, n)
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// TokenOptions describe a new enrollment token. The zero value is a token
// that never expires, has no limit of uses and adds no labels.
type TokenOptions struct {
	// TTL is how long the token can be used; 0 means forever.
	TTL time.Duration
	// MaxUses is how many devices may enroll with it; 0 means no limit.
	MaxUses int
	// Labels are given to every device that enrolls with the token and win
	// over the device's own labels of the same key.
	Labels map[string]string
}

// Token describes an enrollment token, never its secret value.
type Token struct {
	// ID names the token for RevokeToken; it is not a secret.
	ID      string            `json:"id"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	// Expires is zero for a token that never expires.
	Expires time.Time `json:"expires,omitzero"`
	// MaxUses is 0 for no limit.
	MaxUses int `json:"max_uses,omitempty"`
	Uses    int `json:"uses"`
	// Revoked is zero unless the token was revoked.
	Revoked time.Time `json:"revoked,omitzero"`
}

// CreateToken creates an enrollment token and returns its description and
// its secret value, which is shown here once: the store keeps only its
// SHA-256. Errors wrap ErrInvalid (a negative TTL or MaxUses, a malformed
// label) or ErrStore.
func (s *Server) CreateToken(opts TokenOptions) (Token, string, error) {
	if opts.TTL < 0 || opts.MaxUses < 0 {
		return Token{}, "", fmt.Errorf("%w: negative time to live or number of uses", ErrInvalid)
	}
	if err := checkLabels(opts.Labels); err != nil {
		return Token{}, "", err
	}
	secret, err := randomSecret(tokenPrefix)
	if err != nil {
		return Token{}, "", err
	}
	idb := make([]byte, 6)
	if _, err := rand.Read(idb); err != nil {
		return Token{}, "", fmt.Errorf("%w: random: %w", ErrStore, err)
	}
	now := s.now().Round(0)
	t := &tokenRecord{ID: "tok-" + hex.EncodeToString(idb), Hash: hashSecret(secret), Labels: cloneMap(opts.Labels), Created: now, MaxUses: opts.MaxUses}
	if opts.TTL > 0 {
		t.Expires = now.Add(opts.TTL)
	}
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	s.mu.Lock()
	s.tokens[t.ID] = t
	s.mu.Unlock()
	if err := s.saveTokens(); err != nil {
		s.mu.Lock()
		delete(s.tokens, t.ID)
		s.mu.Unlock()
		return Token{}, "", err
	}
	s.log.Info("fleet enrollment token created", "token_id", t.ID, "expires", t.Expires, "max_uses", t.MaxUses)
	return t.public(), secret, nil
}

// RevokeToken revokes the enrollment token id: no device can enroll with it
// any more (devices that did keep their credentials). Revoking a revoked
// token is not an error. Errors wrap ErrNotFound or ErrStore.
func (s *Server) RevokeToken(id string) error {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	s.mu.Lock()
	t, ok := s.tokens[id]
	if ok && t.Revoked.IsZero() {
		t.Revoked = s.now().Round(0)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: enrollment token %q", ErrNotFound, id)
	}
	if err := s.saveTokens(); err != nil {
		return err
	}
	s.log.Info("fleet enrollment token revoked", "token_id", id)
	return nil
}

// Tokens lists the enrollment tokens, by ID.
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		out = append(out, t.public())
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (t *tokenRecord) public() Token {
	return Token{ID: t.ID, Labels: cloneMap(t.Labels), Created: t.Created, Expires: t.Expires, MaxUses: t.MaxUses, Uses: t.Uses, Revoked: t.Revoked}
}

func sortTokens(ts []tokenRecord) {
	slices.SortFunc(ts, func(a, b tokenRecord) int { return strings.Compare(a.ID, b.ID) })
}

// Device is what the inventory knows about one device.
type Device struct {
	// ID names the device in the API's paths and the rollout.
	ID string `json:"id"`
	// Name is the name the device gave at enrollment.
	Name string `json:"name,omitempty"`
	// Labels are the device's labels (its own and its token's).
	Labels map[string]string `json:"labels,omitempty"`
	// Info is the latest description the device gave of itself.
	Info api.DeviceInfo `json:"info"`
	// Enrolled is when it enrolled; TokenID with which token.
	Enrolled time.Time `json:"enrolled"`
	TokenID  string    `json:"token_id,omitempty"`
	// LastSeen is the time of the device's last authenticated request
	// (the store keeps it as of the last report or enrollment; a poll
	// updates it in memory only). LastReport is the last status report's;
	// zero before the first.
	LastSeen   time.Time `json:"last_seen,omitzero"`
	LastReport time.Time `json:"last_report,omitzero"`
	// Status is the last status report; nil before the first.
	Status *api.StatusReport `json:"status,omitempty"`
	// DesiredVersion is the version of the desired state the device
	// should run now.
	DesiredVersion string `json:"desired_version"`
	// Revoked is when the device was revoked; zero if it was not.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Devices returns the devices whose labels match (nil matches all),
// revoked ones included, sorted by ID. The CLI passes a
// spec.LabelSelector's Matches. The values are copies.
func (s *Server) Devices(match func(labels map[string]string) bool) []Device {
	s.mu.Lock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		if match != nil && !match(d.rec.Labels) {
			continue
		}
		out = append(out, d.public())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// EachDevice calls fn for every device, revoked ones included, in no
// order, while it holds the server's lock: fn must be quick, must not call
// the Server, and must not keep or modify the Labels map or the Status it
// is given (they are the server's own, shared to spare a copy per device;
// a report replaces them rather than changing them). It is the cheap
// snapshot a controller takes at every step; others use Devices.
func (s *Server) EachDevice(fn func(Device)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		fn(d.public0())
	}
}

// Device returns device id. Errors wrap ErrNotFound.
func (s *Server) Device(id string) (Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return Device{}, fmt.Errorf("%w: device %q", ErrNotFound, id)
	}
	return d.public(), nil
}

// public copies d; the caller holds s.mu. Status reports are never
// modified in place (a report replaces the pointer), so sharing is safe.
func (d *device) public() Device {
	p := d.public0()
	p.Labels = cloneMap(p.Labels)
	return p
}

// public0 is public sharing the labels map.
func (d *device) public0() Device {
	return Device{
		ID: d.rec.ID, Name: d.rec.Name, Labels: d.rec.Labels, Info: d.rec.Info,
		Enrolled: d.rec.Enrolled, TokenID: d.rec.TokenID, LastSeen: d.rec.LastSeen,
		LastReport: d.rec.LastReport, Status: d.rec.Status, DesiredVersion: d.version, Revoked: d.rec.Revoked,
	}
}

// RevokeDevice revokes device id: its credential stops working at once (its
// pending long-poll ends with 401) and it leaves every rollout's
// inventory. Revoking a revoked device is not an error. Errors wrap
// ErrNotFound or ErrStore.
func (s *Server) RevokeDevice(id string) error {
	s.mu.Lock()
	d, ok := s.devices[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: device %q", ErrNotFound, id)
	}
	if d.rec.Revoked.IsZero() {
		d.rec.Revoked = s.now().Round(0)
		delete(s.creds, d.rec.CredHash)
		d.notifyLocked()
	}
	s.mu.Unlock()
	err := s.saveDevice(d)
	s.notifySubscribers()
	if err != nil {
		s.log.Error("fleet store", "err", err)
		return err
	}
	s.log.Info("fleet device revoked", "device", id)
	return nil
}

// SetDesiredApp sets what device id should run in slot (a name unique per
// controller and app, such as "TARGET/APP"), or removes the slot when app
// is nil. The device's desired state is every slot's app, sorted by app
// name; when it changes, its version changes and its long-poll returns. It
// reports whether the device exists (unknown and revoked devices are
// ignored).
func (s *Server) SetDesiredApp(id, slot string, app *api.DesiredApp) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok || !d.rec.Revoked.IsZero() {
		return false
	}
	if app == nil {
		if _, had := d.apps[slot]; !had {
			return true
		}
		delete(d.apps, slot)
	} else {
		if cur, had := d.apps[slot]; had && sameApp(cur, *app) {
			return true
		}
		a := *app
		// Every device of a rollout gets the same values: they share one
		// copy (never modified: a change sets a new map) instead of
		// holding 10,000 equal ones.
		if maps.Equal(a.Values, s.lastValues) {
			a.Values = s.lastValues
		} else {
			a.Values = cloneMap(a.Values)
			s.lastValues = a.Values
		}
		d.apps[slot] = a
	}
	if v := versionOf(d.apps); v != d.version {
		d.version = v
		d.notifyLocked()
	}
	return true
}

// DesiredApp returns what slot of device id holds, if anything.
func (s *Server) DesiredApp(id, slot string) (api.DesiredApp, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return api.DesiredApp{}, false
	}
	a, ok := d.apps[slot]
	return a, ok
}

// desiredLocked returns d's desired state; the caller holds s.mu.
func (d *device) desiredLocked() api.Desired {
	apps := make([]api.DesiredApp, 0, len(d.apps))
	for _, a := range d.apps {
		apps = append(apps, a)
	}
	sortApps(apps)
	return api.Desired{Version: d.version, Apps: apps}
}

func (d *device) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func sameApp(a, b api.DesiredApp) bool {
	return a.Name == b.Name && a.Ref == b.Ref && a.Digest == b.Digest && a.Owner == b.Owner && maps.Equal(a.Values, b.Values)
}

func sortApps(apps []api.DesiredApp) {
	slices.SortFunc(apps, func(a, b api.DesiredApp) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Owner, b.Owner)
	})
}

// versionOf is the content hash of a desired state: equal content, equal
// version, across restarts.
func versionOf(apps map[string]api.DesiredApp) string {
	list := slices.Collect(maps.Values(apps))
	sortApps(list)
	if list == nil {
		list = []api.DesiredApp{}
	}
	data, _ := json.Marshal(list) // maps marshal in key order
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// Subscribe returns a channel that receives a value (coalesced: at most one
// waits) after every status report, enrollment or device revocation, so a
// controller can step its rollout; and the function that ends the
// subscription.
func (s *Server) Subscribe() (<-chan struct{}, func()) {
	sub := &subscriber{ch: make(chan struct{}, 1)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub.ch, func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

func (s *Server) notifySubscribers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		select {
		case sub.ch <- struct{}{}:
		default:
		}
	}
}

// Now returns the time on the server's clock.
func (s *Server) Now() time.Time { return s.now() }

func randomSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("%w: random: %w", ErrStore, err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$`)
	idRE         = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,62}[a-z0-9])?$`)
	nameCleanRE  = regexp.MustCompile(`[^a-z0-9]+`)
)

const maxLabels = 64

// checkLabels applies Kubernetes label syntax. Errors wrap ErrInvalid and
// name the key, never a value's content beyond its syntax.
func checkLabels(l map[string]string) error {
	if len(l) > maxLabels {
		return fmt.Errorf("%w: %d labels (at most %d)", ErrInvalid, len(l), maxLabels)
	}
	for k, v := range l {
		if len(k) > 253 || !labelKeyRE.MatchString(k) {
			return fmt.Errorf("%w: label key %q is not a valid label name", ErrInvalid, k)
		}
		if !labelValueRE.MatchString(v) {
			return fmt.Errorf("%w: the value of label %q is not a valid label value", ErrInvalid, k)
		}
	}
	return nil
}

func validID(id string) bool { return idRE.MatchString(id) }

// newID makes a device ID from the device's name and 8 random hex digits.
func newID(name string) (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("%w: random: %w", ErrStore, err)
	}
	base := strings.Trim(nameCleanRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	if base == "" {
		base = "device"
	}
	return base + "-" + hex.EncodeToString(b), nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
