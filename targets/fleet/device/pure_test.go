package device

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
	hostapi "github.com/ferry-wasm/ferry/targets/host/api"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 20 * time.Second}
	for _, tc := range []struct {
		b       Backoff
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{b, 0, 0, 500 * time.Millisecond},
		{b, 0, 0.5, 750 * time.Millisecond},
		{b, 1, 0, time.Second},
		{b, 1, 0.5, 1500 * time.Millisecond},
		{b, 2, 1, 4 * time.Second},
		{b, 4, 1, 16 * time.Second},
		{b, 5, 1, 20 * time.Second}, // capped
		{b, 5, 0, 10 * time.Second},
		{b, 1000, 1, 20 * time.Second}, // no overflow
		{b, -3, 0, 500 * time.Millisecond},
		{b, 2, -1, 2 * time.Second}, // jitter clamped
		{b, 2, 7, 4 * time.Second},
		{Backoff{}, 0, 0, DefaultBackoffMin / 2},
		{Backoff{}, 100, 1, DefaultBackoffMax},
		{Backoff{Min: 5 * time.Second, Max: time.Second}, 3, 1, 5 * time.Second}, // Max below Min
	} {
		if got := tc.b.Delay(tc.attempt, tc.jitter); got != tc.want {
			t.Errorf("%+v.Delay(%d, %v) = %v, want %v", tc.b, tc.attempt, tc.jitter, got, tc.want)
		}
	}
	// Bounded for every attempt and jitter.
	for a := 0; a < 80; a++ {
		for _, j := range []float64{0, 0.3, 0.99} {
			if d := b.Delay(a, j); d <= 0 || d > b.Max {
				t.Fatalf("Delay(%d, %v) = %v, out of (0, %v]", a, j, d, b.Max)
			}
		}
	}
}

const (
	dA = "sha256:aaaa"
	dB = "sha256:bbbb"
	dC = "sha256:cccc"
)

func desired(apps ...api.DesiredApp) api.Desired { return api.Desired{Version: "v1", Apps: apps} }

func dapp(name, digest string) api.DesiredApp {
	return api.DesiredApp{Name: name, Ref: "reg.example/apps/" + name + "@" + digest, Digest: digest}
}

func serving(name, digest string) hostapi.AppInfo {
	return hostapi.AppInfo{Name: name, Digest: digest, Status: hostapi.StatusServing, Healthy: true, SecretHashes: map[string]string{}}
}

func TestDecide(t *testing.T) {
	key := []byte("k")
	withVals := dapp("web", dA)
	withVals.Values = map[string]string{"TOKEN": "s3cret"}
	servingVals := serving("web", dA)
	servingVals.SecretHashes = hostapi.SecretHashes(key, "web", withVals.Values)
	owned := dapp("web", dA)
	owned.Owner = "git:x//y#t"
	rolledBack := serving("web", dA)
	rolledBack.RolledBack = &hostapi.HostRollback{From: dB, To: dA}
	failedRestore := serving("web", dA)
	failedRestore.Status = hostapi.StatusFailed
	noDigest := dapp("web", "")
	noDigest.Ref = "reg.example/apps/web@" + dB
	noDigest.Digest = ""
	type res struct {
		Kind ActionKind
		Name string
	}
	for _, tc := range []struct {
		name    string
		d       api.Desired
		running []hostapi.AppInfo
		failed  map[string]Failure
		want    []res
	}{
		{"nothing", desired(), nil, nil, nil},
		{"new app", desired(dapp("web", dA)), nil, nil, []res{{ActionPut, "web"}}},
		{"converged", desired(dapp("web", dA)), []hostapi.AppInfo{serving("web", dA)}, nil, nil},
		{"new version", desired(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)}, nil, []res{{ActionPut, "web"}}},
		{"digest only in ref", desired(noDigest), []hostapi.AppInfo{serving("web", dA)}, nil, []res{{ActionPut, "web"}}},
		{"digest only in ref, converged", desired(noDigest), []hostapi.AppInfo{serving("web", dB)}, nil, nil},
		{"failed restore is put again", desired(dapp("web", dA)), []hostapi.AppInfo{failedRestore}, nil, []res{{ActionPut, "web"}}},
		{"permanent failure not retried", desired(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)},
			map[string]Failure{"web": {Digest: dB, Permanent: true}}, nil},
		{"transient failure retried", desired(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)},
			map[string]Failure{"web": {Digest: dB}}, []res{{ActionPut, "web"}}},
		{"failure of an older digest does not block a newer", desired(dapp("web", dC)), []hostapi.AppInfo{serving("web", dA)},
			map[string]Failure{"web": {Digest: dB, Permanent: true}}, []res{{ActionPut, "web"}}},
		{"health rollback not undone", desired(dapp("web", dB)), []hostapi.AppInfo{rolledBack}, nil, nil},
		{"health rollback, then a newer version", desired(dapp("web", dC)), []hostapi.AppInfo{rolledBack}, nil, []res{{ActionPut, "web"}}},
		{"new values", desired(withVals), []hostapi.AppInfo{serving("web", dA)}, nil, []res{{ActionReconfigure, "web"}}},
		{"same values", desired(withVals), []hostapi.AppInfo{servingVals}, nil, nil},
		{"values removed", desired(dapp("web", dA)), []hostapi.AppInfo{servingVals}, nil, []res{{ActionReconfigure, "web"}}},
		{"new owner", desired(owned), []hostapi.AppInfo{serving("web", dA)}, nil, []res{{ActionReconfigure, "web"}}},
		{"removed app", desired(dapp("b", dA)), []hostapi.AppInfo{serving("a", dA), serving("b", dA), serving("c", dA)}, nil,
			[]res{{ActionDelete, "a"}, {ActionDelete, "c"}}},
		{"puts sorted, before deletes", desired(dapp("z", dA), dapp("m", dA)), []hostapi.AppInfo{serving("a", dA)}, nil,
			[]res{{ActionPut, "m"}, {ActionPut, "z"}, {ActionDelete, "a"}}},
		{"duplicate name: the first counts", desired(dapp("web", dA), dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []res
			for _, a := range Decide(tc.d, tc.running, tc.failed, key) {
				got = append(got, res{a.Kind, a.App.Name})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatuses(t *testing.T) {
	unhealthy := serving("web", dB)
	unhealthy.Healthy = false
	withPrev := serving("web", dB)
	withPrev.Previous = dA
	rolledBack := serving("web", dA)
	rolledBack.Previous = dB
	rolledBack.RolledBack = &hostapi.HostRollback{From: dB, To: dA, Reason: "component web unhealthy"}
	restoreFailed := hostapi.AppInfo{Name: "web", Digest: dA, Status: hostapi.StatusFailed, Message: "cached signature of x: no matching key"}
	d := func(apps ...api.DesiredApp) *api.Desired { x := desired(apps...); return &x }
	for _, tc := range []struct {
		name    string
		d       *api.Desired
		running []hostapi.AppInfo
		failed  map[string]Failure
		want    []api.AppStatus
	}{
		{"nothing yet", nil, nil, nil, []api.AppStatus{}},
		{"restored before any desired state", nil, []hostapi.AppInfo{serving("web", dA)}, nil,
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseServing, Healthy: true}}},
		{"restore failed before any desired state", nil, []hostapi.AppInfo{restoreFailed}, nil,
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseFailed, Error: restoreFailed.Message}}},
		{"serving", d(dapp("web", dB)), []hostapi.AppInfo{withPrev}, nil,
			[]api.AppStatus{{Name: "web", Digest: dB, Previous: dA, Phase: api.PhaseServing, Healthy: true}}},
		{"unhealthy", d(dapp("web", dB)), []hostapi.AppInfo{unhealthy}, nil,
			[]api.AppStatus{{Name: "web", Digest: dB, Phase: api.PhaseUnhealthy}}},
		{"updating", d(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)}, nil,
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseUpdating, Healthy: true}}},
		{"updating, transient error", d(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)},
			map[string]Failure{"web": {Digest: dB, Error: "registry down"}},
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseUpdating, Healthy: true, Error: "registry down"}}},
		{"not there yet", d(dapp("web", dB)), nil, nil, []api.AppStatus{{Name: "web", Phase: api.PhaseUpdating}}},
		{"refused, old serves", d(dapp("web", dB)), []hostapi.AppInfo{serving("web", dA)},
			map[string]Failure{"web": {Digest: dB, Error: "bad signature", Permanent: true}},
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseRolledBack, Healthy: true, Failed: dB, Error: "bad signature"}}},
		{"refused, nothing serves", d(dapp("web", dB)), nil,
			map[string]Failure{"web": {Digest: dB, Error: "bad signature", Permanent: true}},
			[]api.AppStatus{{Name: "web", Phase: api.PhaseFailed, Failed: dB, Error: "bad signature"}}},
		{"failure of an older digest is not reported", d(dapp("web", dC)), []hostapi.AppInfo{serving("web", dC)},
			map[string]Failure{"web": {Digest: dB, Error: "bad signature", Permanent: true}},
			[]api.AppStatus{{Name: "web", Digest: dC, Phase: api.PhaseServing, Healthy: true}}},
		{"health rollback", d(dapp("web", dB)), []hostapi.AppInfo{rolledBack}, nil,
			[]api.AppStatus{{Name: "web", Digest: dA, Previous: dB, Phase: api.PhaseRolledBack, Healthy: true, Failed: dB,
				Error: "The health probe rolled it back: component web unhealthy"}}},
		{"restore failed", d(dapp("web", dA)), []hostapi.AppInfo{restoreFailed}, nil,
			[]api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseFailed, Error: restoreFailed.Message}}},
		{"being removed", d(), []hostapi.AppInfo{serving("old", dA)}, nil,
			[]api.AppStatus{{Name: "old", Digest: dA, Phase: api.PhaseUpdating, Healthy: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Statuses(tc.d, tc.running, tc.failed)); diff != "" {
				t.Errorf("Statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := api.StatusReport{DesiredVersion: "v1", Apps: []api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseServing}}}
	other := rep
	other.Apps = []api.AppStatus{{Name: "web", Digest: dA, Phase: api.PhaseUnhealthy}}
	newVer := rep
	newVer.DesiredVersion = "v2"
	infoOnly := rep
	infoOnly.Info.UptimeSeconds = 99
	for _, tc := range []struct {
		name string
		last *api.StatusReport
		next api.StatusReport
		at   time.Duration
		want bool
	}{
		{"first", nil, rep, 0, true},
		{"unchanged", &rep, rep, time.Second, false},
		{"info only", &rep, infoOnly, time.Second, false},
		{"apps changed", &rep, other, time.Second, true},
		{"new desired version", &rep, newVer, time.Second, true},
		{"heartbeat", &rep, rep, time.Minute, true},
	} {
		if got := ReportDue(tc.last, tc.next, t0, t0.Add(tc.at), time.Minute); got != tc.want {
			t.Errorf("%s: ReportDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"site=berlin,tier=edge", map[string]string{"site": "berlin", "tier": "edge"}, ""},
		{" a=1 , ferry.dev/ring=canary ", map[string]string{"a": "1", "ferry.dev/ring": "canary"}, ""},
		{"empty=", map[string]string{"empty": ""}, ""},
		{"novalue", nil, "want key=value"},
		{"a=1,a=2", nil, "given twice"},
		{"-bad=1", nil, "not a valid label key"},
		{"k=has space", nil, "not a valid label value"},
	} {
		got, err := ParseLabels(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseLabels(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("ParseLabels(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckServerURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
	}{
		{"https://fleet.example.com", true, "https://fleet.example.com"},
		{"https://fleet.example.com/base/", true, "https://fleet.example.com/base"},
		{"http://127.0.0.1:8443", true, "http://127.0.0.1:8443"},
		{"http://[::1]:80", true, "http://[::1]:80"},
		{"http://localhost:9", true, "http://localhost:9"},
		{"http://fleet.example.com", false, ""},
		{"http://10.0.0.1:80", false, ""},
		{"ftp://x", false, ""},
		{"https://user:pw@x", false, ""},
		{"fleet.example.com", false, ""},
	} {
		u, err := CheckServerURL(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("CheckServerURL(%q) error = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && u.String() != tc.want {
			t.Errorf("CheckServerURL(%q) = %s, want %s", tc.in, u, tc.want)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	modern := "MemTotal:        2048000 kB\nMemFree:          100000 kB\nMemAvailable:    1500000 kB\nBuffers:           10 kB\n"
	old := "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 30 kB\n"
	if got := ParseMeminfo(strings.NewReader(modern)); got != 1500000*1024 {
		t.Errorf("modern: %d", got)
	}
	if got := ParseMeminfo(strings.NewReader(old)); got != 150*1024 {
		t.Errorf("old kernel: %d", got)
	}
	if got := ParseMeminfo(strings.NewReader("garbage\n:::\n")); got != 0 {
		t.Errorf("garbage: %d", got)
	}
	if got := ParseUptime("12345.67 54321.00\n"); got != 12345.67 {
		t.Errorf("uptime: %v", got)
	}
	if got := ParseUptime("x"); got != 0 {
		t.Errorf("bad uptime: %v", got)
	}
}

func TestInfoReadsTheMachine(t *testing.T) {
	in := Info("v9", t.TempDir(), time.Now())
	if in.Version != "v9" || in.Arch == "" || in.OS == "" || in.UptimeSeconds <= 0 || in.FreeMemory == 0 || in.FreeDisk == 0 {
		t.Errorf("Info = %+v: every figure should be set on Linux", in)
	}
}
