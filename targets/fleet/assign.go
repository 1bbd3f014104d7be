package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-wasm/ferry/spec"
)

// Assignment puts every device a fleet target selects into exactly one wave
// of its rollout.
type Assignment struct {
	// Waves holds the IDs of each wave's devices, in rollout order; within
	// a wave, in the stable device order (see Assign). A wave may be empty.
	Waves  [][]string
	index  map[string]int // device ID -> index in the device list
	waveOf []int          // by device index; -1 when not selected
	n      int
}

// Wave returns the index of the wave device id belongs to, or -1 and false
// when the target does not select the device or it was not in the list.
func (a *Assignment) Wave(id string) (int, bool) {
	i, ok := a.index[id]
	if !ok || a.waveOf[i] < 0 {
		return -1, false
	}
	return a.waveOf[i], true
}

// Len returns how many devices were assigned.
func (a *Assignment) Len() int { return a.n }

// ranked is a device with its place in the stable order.
type ranked struct {
	key uint64
	idx int
}

// Assign puts every device that sel matches into exactly one wave of r
// (spec.DefaultRollout when nil), following LANGUAGE.md:
//
//   - A wave without a selector covers Percent% of the fleet cumulatively:
//     once it is reached, at least ceil(Percent×N/100) of the N selected
//     devices are in it or an earlier wave; it takes the devices still
//     missing from the front of the stable order.
//   - A wave with a selector covers Percent% (0 means 100) of the devices
//     that match it, cumulatively in the same way: it takes matching devices
//     not in an earlier wave from the front of the stable order until
//     ceil(Percent×M/100) of the M matching devices are covered.
//   - The last wave is fleet-wide at 100% and takes everything left.
//
// The stable order sorts devices by the first 8 bytes of SHA-256(ID) read
// as a big-endian number, then by ID. It depends on nothing but the IDs, so
// the waves do not change when the device list is reordered, or when the
// agent restarts, and a device that joins later lands in a wave that only
// its ID and the fleet's size decide; adding one device moves at most one
// other device per wave boundary. Errors wrap ErrInvalidPolicy or
// ErrInvalidDevice (an empty or repeated ID).
func Assign(sel spec.LabelSelector, r *spec.Rollout, devices []Device) (*Assignment, error) {
	if r == nil {
		r = spec.DefaultRollout()
	}
	if err := checkSelector(sel, "the target's selector"); err != nil {
		return nil, err
	}
	if err := checkRollout(r); err != nil {
		return nil, err
	}
	return assign(sel, r, devices)
}

func assign(sel spec.LabelSelector, r *spec.Rollout, devices []Device) (*Assignment, error) {
	a := &Assignment{Waves: make([][]string, len(r.Waves)), index: make(map[string]int, len(devices)), waveOf: make([]int, len(devices))}
	fleet := make([]ranked, 0, len(devices))
	for i := range devices {
		id := devices[i].ID
		if id == "" {
			return nil, fmt.Errorf("%w: device %d has an empty ID", ErrInvalidDevice, i)
		}
		if _, dup := a.index[id]; dup {
			return nil, fmt.Errorf("%w: device %q is listed twice", ErrInvalidDevice, id)
		}
		a.index[id] = i
		a.waveOf[i] = -1
		if sel.Matches(devices[i].Labels) {
			fleet = append(fleet, ranked{key: rankKey(id), idx: i})
		}
	}
	slices.SortFunc(fleet, func(x, y ranked) int {
		if x.key != y.key {
			if x.key < y.key {
				return -1
			}
			return 1
		}
		return strings.Compare(devices[x.idx].ID, devices[y.idx].ID)
	})

	a.n = len(fleet)
	taken := make([]bool, len(fleet))
	var matches []bool
	covered := 0 // devices of the fleet in some wave so far
	for wi, w := range r.Waves {
		last := wi == len(r.Waves)-1
		if w.Selector.Empty() {
			want := ceilPercent(w.Percent, len(fleet))
			if last {
				want = len(fleet)
			}
			for i := 0; i < len(fleet) && covered < want; i++ {
				if !taken[i] {
					taken[i] = true
					covered++
					a.add(wi, devices, fleet[i].idx)
				}
			}
			continue
		}
		pct := w.Percent
		if pct == 0 {
			pct = 100
		}
		if matches == nil {
			matches = make([]bool, len(fleet))
		}
		matching, have := 0, 0
		for i := range fleet {
			matches[i] = w.Selector.Matches(devices[fleet[i].idx].Labels)
			if matches[i] {
				matching++
				if taken[i] {
					have++
				}
			}
		}
		want := ceilPercent(pct, matching)
		for i := 0; i < len(fleet) && have < want; i++ {
			if !taken[i] && matches[i] {
				taken[i] = true
				have++
				covered++
				a.add(wi, devices, fleet[i].idx)
			}
		}
	}
	return a, nil
}

func (a *Assignment) add(wave int, devices []Device, idx int) {
	a.Waves[wave] = append(a.Waves[wave], devices[idx].ID)
	a.waveOf[idx] = wave
}

// ceilPercent is ceil(pct×n/100) in integers.
func ceilPercent(pct, n int) int { return (pct*n + 99) / 100 }

// rankKey is the first 8 bytes of SHA-256(id), big-endian.
func rankKey(id string) uint64 {
	h := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(h[:8])
}
