package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Direction says which way bytes flow through the proxy.
type Direction int

const (
	// Download is server → client (a blob being pulled, a git pack
	// being fetched).
	Download Direction = iota
	// Upload is client → server (a blob being pushed).
	Upload
)

// Action is what a Fault does where its Match passes.
type Action int

const (
	// Pass forwards the bytes; with Latency or BytesPerSecond it only
	// slows them down.
	Pass Action = iota
	// Reset forwards the bytes up to the middle of Match, then resets both
	// connections (RST), as a crashing server or a middlebox does.
	Reset
	// Truncate forwards the bytes up to the middle of Match, then closes
	// both connections cleanly (FIN): the peer sees a body cut short.
	Truncate
	// Corrupt forwards Replace (same length) instead of Match and goes
	// on: only a digest check can tell.
	Corrupt
)

// Fault is one injected fault. The zero value passes everything.
type Fault struct {
	// Dir is the direction the fault watches and acts on (default
	// Download).
	Dir Direction
	// Match is the byte pattern where Action fires. Empty: Action (other
	// than Pass) fires on the first bytes of each connection.
	Match []byte
	// Action is what happens where Match passes (default Pass).
	Action Action
	// Replace replaces Match for Corrupt; it must be as long as Match.
	Replace []byte
	// Times caps how often Action fires; 0 means every time.
	Times int
	// Latency is added before each chunk forwarded in Dir (0: none).
	Latency time.Duration
	// BytesPerSecond caps the throughput in Dir (0: no cap).
	BytesPerSecond int
}

// Proxy is a TCP proxy on a 127.0.0.1 port in front of one upstream
// address. Its methods are safe for concurrent use.
type Proxy struct {
	upstream string
	addr     string

	mu       sync.Mutex
	ln       net.Listener
	closed   bool
	faults   []*fault
	conns    map[net.Conn]struct{}
	accepted int
	wg       sync.WaitGroup
}

type fault struct {
	Fault
	fired int
}

func (f *fault) live() bool { return f.Times == 0 || f.fired < f.Times }

// New starts a proxy on 127.0.0.1:0 that forwards every connection to
// upstream (host:port). Close stops it.
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{upstream: upstream, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's host:port; clients connect here instead of to the
// upstream. It stays the same across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Set replaces the proxy's faults with faults; no argument clears them.
// Connections already open see the new faults from their next read on.
func (p *Proxy) Set(faults ...Fault) error {
	fs := make([]*fault, 0, len(faults))
	for _, f := range faults {
		if f.Action == Corrupt && len(f.Replace) != len(f.Match) {
			return fmt.Errorf("faultproxy: Corrupt needs Replace as long as Match (%d and %d bytes)", len(f.Replace), len(f.Match))
		}
		fs = append(fs, &fault{Fault: f})
	}
	p.mu.Lock()
	p.faults = fs
	p.mu.Unlock()
	return nil
}

// Fired returns how many times the current faults' actions fired, in the
// order given to Set.
func (p *Proxy) Fired() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.faults))
	for i, f := range p.faults {
		out[i] = f.fired
	}
	return out
}

// Accepted returns how many client connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Down makes the server look down: the listener closes (new connections
// are refused) and every open connection is reset.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.ResetAll()
}

// Up listens again on the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	if p.ln != nil {
		return nil
	}
	var err error
	for range 50 { // the port may linger for a moment
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.ln = ln
			p.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
}

// ResetAll resets every open connection now (RST to both peers).
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		reset(c)
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Down()
	p.wg.Wait()
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	p.mu.Lock()
	p.accepted++
	p.mu.Unlock()
	server, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		reset(client)
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer p.track(client, false)
	defer p.track(server, false)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, Download); done <- struct{}{} }()
	go func() { p.pipe(client, server, Upload); done <- struct{}{} }()
	<-done
	// One side ended (or a fault cut it): end the other too.
	client.Close()
	server.Close()
	<-done
}

// hold is how long bytes that may begin a match are held back when no more
// arrive, before they are forwarded anyway.
const hold = 100 * time.Millisecond

// pipe copies src to dst, applying the faults of direction dir.
func (p *Proxy) pipe(src, dst net.Conn, dir Direction) {
	buf := make([]byte, 32<<10)
	var carry []byte // bytes that may be the start of a match
	first := true
	for {
		if len(carry) > 0 {
			src.SetReadDeadline(time.Now().Add(hold)) //nolint:errcheck // best effort
		} else {
			src.SetReadDeadline(time.Time{}) //nolint:errcheck
		}
		n, err := src.Read(buf)
		if err != nil && n == 0 {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && len(carry) > 0 {
				if _, werr := dst.Write(carry); werr != nil {
					return
				}
				carry = nil
				continue
			}
			if len(carry) > 0 {
				dst.Write(carry) //nolint:errcheck // ending anyway
			}
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite() //nolint:errcheck // half close, as the peer did
				}
			}
			return
		}
		data := append(carry, buf[:n]...)
		carry = nil
		out, keep, cut := p.apply(dir, data, first)
		first = false
		if lat, bps := p.pace(dir); lat > 0 || bps > 0 {
			if lat > 0 {
				time.Sleep(lat)
			}
			if bps > 0 {
				time.Sleep(time.Duration(float64(len(out)) / float64(bps) * float64(time.Second)))
			}
		}
		if len(out) > 0 {
			if _, err := dst.Write(out); err != nil {
				return
			}
		}
		switch cut {
		case Reset:
			reset(src)
			reset(dst)
			return
		case Truncate:
			src.Close()
			dst.Close()
			return
		}
		carry = append([]byte(nil), keep...)
	}
}

// pace returns the latency and bandwidth cap of the live faults of dir.
func (p *Proxy) pace(dir Direction) (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lat time.Duration
	bps := 0
	for _, f := range p.faults {
		if f.Dir != dir {
			continue
		}
		lat = max(lat, f.Latency)
		if f.BytesPerSecond > 0 && (bps == 0 || f.BytesPerSecond < bps) {
			bps = f.BytesPerSecond
		}
	}
	return lat, bps
}

// apply runs the live faults of dir over data (first: the connection's
// first bytes in dir) and returns the bytes to forward now, the bytes to
// hold back (they may begin a match), and Reset or Truncate when the
// connection is to be cut after out.
func (p *Proxy) apply(dir Direction, data []byte, first bool) (out, keep []byte, cut Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	longest := 0
	for _, f := range p.faults {
		if f.Dir != dir || f.Action == Pass || !f.live() {
			continue
		}
		if len(f.Match) == 0 {
			if !first {
				continue
			}
			f.fired++
			switch f.Action {
			case Reset, Truncate:
				return nil, nil, f.Action
			}
			continue
		}
		for from := 0; f.live(); {
			i := bytes.Index(data[from:], f.Match)
			if i < 0 {
				break
			}
			i += from
			f.fired++
			if f.Action == Corrupt {
				copy(data[i:], f.Replace)
				from = i + len(f.Match)
				continue
			}
			return data[:i+len(f.Match)/2], nil, f.Action
		}
		if f.live() {
			longest = max(longest, prefixSuffix(data, f.Match))
		}
	}
	return data[:len(data)-longest], data[len(data)-longest:], Pass
}

// prefixSuffix returns the length of the longest suffix of data that is a
// proper prefix of m.
func prefixSuffix(data, m []byte) int {
	for k := min(len(m)-1, len(data)); k > 0; k-- {
		if bytes.HasSuffix(data, m[:k]) {
			return k
		}
	}
	return 0
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // best effort
	}
	c.Close()
}
