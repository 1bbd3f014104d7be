package fleet

import "github.com/ferry-wasm/ferry/spec"

// Preview is what a rollout by one policy over a fleet looks like now:
// how many devices each wave takes and at what rate, and, for a rollout in
// progress, how it stands against the fleet as it is now. It is what
// `ferry plan` shows for a fleet target.
type Preview struct {
	// Selected is how many devices the target's selector picks.
	Selected int `json:"selected"`
	// Waves is how many of them each wave takes, in order.
	Waves []int `json:"waves"`
	// Rates is each wave's rate limit in starts per minute (RateAt); nil
	// when starts are not limited.
	Rates []int `json:"rates,omitempty"`
	// Pending is how many selected devices the State has not started;
	// zero without a State.
	Pending int `json:"pending"`
	// Gate is the State's current wave's health gate over the fleet as
	// it is now; zero without a State.
	Gate Gate `json:"gate"`
}

// PreviewOf previews a rollout by policy over devices and, when st is not
// nil, how rollout st stands against them. It is pure, like Step: it
// changes neither st nor devices. Errors wrap ErrInvalidPolicy,
// ErrInvalidState or ErrInvalidDevice.
func PreviewOf(policy *spec.FleetTarget, devices []Device, st *State) (Preview, error) {
	r, err := rollout(policy)
	if err != nil {
		return Preview{}, err
	}
	asg, err := assign(policy.Selector, r, devices)
	if err != nil {
		return Preview{}, err
	}
	p := Preview{Selected: asg.Len(), Waves: make([]int, len(asg.Waves))}
	for i, w := range asg.Waves {
		p.Waves[i] = len(w)
		if r.RateLimit > 0 {
			p.Rates = append(p.Rates, RateAt(r, i))
		}
	}
	if st == nil {
		return p, nil
	}
	if err := st.check(); err != nil {
		return Preview{}, err
	}
	for _, ids := range asg.Waves {
		for _, id := range ids {
			if _, started := st.Devices[id]; !started {
				p.Pending++
			}
		}
	}
	p.Gate = st.gate(asg, r, min(st.Wave, len(r.Waves)-1))
	return p, nil
}
