package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
)

// ownerTarget is a target that reports a fixed observed state and, when
// records is set, implements targets.OwnerRecorder. Only ComputePlan uses
// it (the real host is in cmd/ferry/owner_e2e_test.go).
type ownerTarget struct {
	apps    []targets.ObservedApp
	records bool
}

func (o ownerTarget) Observe(context.Context) ([]targets.ObservedApp, error) {
	return slices.Clone(o.apps), nil
}
func (ownerTarget) Put(context.Context, targets.DesiredApp) (targets.PutResult, error) {
	return targets.PutResult{}, nil
}
func (ownerTarget) Delete(context.Context, string) error { return nil }
func (o ownerTarget) RecordsOwners() bool                { return o.records }

var _ targets.OwnerRecorder = ownerTarget{}

// TestComputeOwnership is the ownership rule of ComputePlan, case by case:
// which observed apps a plan deletes, updates, refuses or leaves alone,
// depending on their recorded owner, the plan's Source, Adopt, and whether
// the target records owners at all.
func TestComputeOwnership(t *testing.T) {
	const source = "git:git.test/acme/a"
	mine := OwnerOf(source, "t")
	other := OwnerOf("git:git.test/acme/b", "t")
	obs := func(name, label, owner string) targets.ObservedApp {
		return targets.ObservedApp{Name: name, Digest: plantest.Dg(label), Managed: true, Healthy: true, Owner: owner}
	}
	type want struct {
		actions map[string]Action // app -> action; apps absent have no change
		errApp  string            // the app of the one error diagnostic, "" for none
		errHas  []string          // its summary+detail contains these
		notes   map[string]string // app -> note summary
		owner   string            // After.Owner of every change with an After
	}
	cases := []struct {
		name     string
		desired  []targets.DesiredApp
		observed []targets.ObservedApp
		records  bool
		source   string
		adopt    bool
		want     want
	}{{
		name:     "own app removed from the spec is deleted",
		desired:  []targets.DesiredApp{plantest.App("x", "x1")},
		observed: []targets.ObservedApp{obs("x", "x1", mine), obs("gone", "g1", mine)},
		records:  true, source: source,
		want: want{actions: map[string]Action{"x": ActionNoop, "gone": ActionDelete}, owner: mine},
	}, {
		name:     "another owner's app is left alone, with a note, not a delete",
		desired:  []targets.DesiredApp{plantest.App("x", "x1")},
		observed: []targets.ObservedApp{obs("x", "x1", mine), obs("theirs", "t1", other)},
		records:  true, source: source,
		want: want{actions: map[string]Action{"x": ActionNoop}, notes: map[string]string{"theirs": "App of another owner left alone"}, owner: mine},
	}, {
		name:     "an app without owner (from before owners) is not ours",
		desired:  nil,
		observed: []targets.ObservedApp{obs("old", "o1", "")},
		records:  true, source: source,
		want: want{actions: map[string]Action{}, notes: map[string]string{"old": "App of another owner left alone"}},
	}, {
		name:     "a name another spec owns is an error naming the owner",
		desired:  []targets.DesiredApp{plantest.App("x", "x2"), plantest.App("y", "y1")},
		observed: []targets.ObservedApp{obs("x", "x1", other)},
		records:  true, source: source,
		want: want{actions: map[string]Action{"y": ActionCreate}, errApp: "x",
			errHas: []string{"App is owned by another spec", `"x"`, other, mine, "-adopt"}, owner: mine},
	}, {
		name:     "a name another spec owns is adopted with Adopt, even at the same digest",
		desired:  []targets.DesiredApp{plantest.App("x", "x1")},
		observed: []targets.ObservedApp{obs("x", "x1", other)},
		records:  true, source: source, adopt: true,
		want: want{actions: map[string]Action{"x": ActionUpdate}, owner: mine},
	}, {
		name:     "an app without owner named by the spec is an error",
		desired:  []targets.DesiredApp{plantest.App("old", "o2")},
		observed: []targets.ObservedApp{obs("old", "o1", "")},
		records:  true, source: source,
		want: want{actions: map[string]Action{}, errApp: "old", errHas: []string{"App has no owner", `"old"`, "before ferry recorded owners", "-adopt"}},
	}, {
		name:     "an app without owner is adopted with Adopt",
		desired:  []targets.DesiredApp{plantest.App("old", "o2")},
		observed: []targets.ObservedApp{obs("old", "o1", "")},
		records:  true, source: source, adopt: true,
		want: want{actions: map[string]Action{"old": ActionUpdate}, owner: mine},
	}, {
		name:     "Adopt does not delete another owner's app the spec does not name",
		desired:  nil,
		observed: []targets.ObservedApp{obs("theirs", "t1", other)},
		records:  true, source: source, adopt: true,
		want: want{actions: map[string]Action{}, notes: map[string]string{"theirs": "App of another owner left alone"}},
	}, {
		name:     "the same spec on another target of the same host is another owner",
		desired:  nil,
		observed: []targets.ObservedApp{obs("sibling", "s1", OwnerOf(source, "t2"))},
		records:  true, source: source,
		want: want{actions: map[string]Action{}, notes: map[string]string{"sibling": "App of another owner left alone"}},
	}, {
		name:     "a target that records no owners: every managed app is ours",
		desired:  []targets.DesiredApp{plantest.App("x", "x1")},
		observed: []targets.ObservedApp{obs("x", "x1", ""), obs("gone", "g1", "")},
		records:  false, source: source,
		want: want{actions: map[string]Action{"x": ActionNoop, "gone": ActionDelete}, owner: ""},
	}, {
		name:     "no Source: ownership is not checked",
		desired:  []targets.DesiredApp{plantest.App("x", "x2")},
		observed: []targets.ObservedApp{obs("x", "x1", other), obs("gone", "g1", other)},
		records:  true, source: "",
		want: want{actions: map[string]Action{"x": ActionUpdate, "gone": ActionDelete}, owner: ""},
	}, {
		name:    "a create is recorded as ours",
		desired: []targets.DesiredApp{plantest.App("new", "n1")},
		records: true, source: source,
		want: want{actions: map[string]Action{"new": ActionCreate}, owner: mine},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := ownerTarget{apps: tc.observed, records: tc.records}
			d := Desired{Targets: []DesiredTarget{{Name: "t", Type: "host", Apps: tc.desired}}}
			p, err := Compute(context.Background(), d, plantest.Tmap("t", tgt), PlanOptions{Source: tc.source, Adopt: tc.adopt})
			if err != nil {
				t.Fatal(err)
			}
			tp := p.Targets[0]
			got := map[string]Action{}
			for _, ch := range tp.Changes {
				got[ch.App] = ch.Action
				if ch.After != nil && ch.After.Owner != tc.want.owner {
					t.Errorf("change of %s: After.Owner %q, want %q", ch.App, ch.After.Owner, tc.want.owner)
				}
				if ch.Action == ActionUpdate && tc.adopt && !strings.HasPrefix(ch.Reasons[0], "adopting an app ") {
					t.Errorf("adopting %s: reasons %q, want the adoption first", ch.App, ch.Reasons)
				}
			}
			if !mapsEqual(got, tc.want.actions) {
				t.Errorf("changes %v, want %v", got, tc.want.actions)
			}
			var errs []Diagnostic
			notes := map[string]string{}
			for _, dg := range tp.Diagnostics {
				switch dg.Severity {
				case SeverityError:
					errs = append(errs, dg)
				case SeverityNote:
					notes[dg.App] = dg.Summary
				}
			}
			switch {
			case tc.want.errApp == "" && (len(errs) > 0 || tp.Errored):
				t.Errorf("unexpected errors (errored %v): %v", tp.Errored, errs)
			case tc.want.errApp != "":
				if len(errs) != 1 || errs[0].App != tc.want.errApp || !tp.Errored || p.Applyable() == nil {
					t.Fatalf("errors %v (errored %v), want one about %s making the plan unapplyable", errs, tp.Errored, tc.want.errApp)
				}
				msg := errs[0].Summary + ": " + errs[0].Detail
				for _, s := range tc.want.errHas {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q does not contain %q", msg, s)
					}
				}
			}
			for app, summary := range tc.want.notes {
				if notes[app] != summary {
					t.Errorf("note of %s: %q, want %q (all: %v)", app, notes[app], summary, tp.Diagnostics)
				}
			}
		})
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestOwnerMoveMakesPlanStale: a plan computed while an app had one owner
// is refused once another spec took it over (the fingerprint covers the
// owner, and the refusal says what moved); an app without owner keeps the
// fingerprint it had before owners were recorded.
func TestOwnerMoveMakesPlanStale(t *testing.T) {
	a := targets.ObservedApp{Name: "x", Digest: plantest.Dg("x"), Managed: true, Healthy: true}
	before := Fingerprint([]targets.ObservedApp{a})
	if got := Fingerprint([]targets.ObservedApp{a}); got != before {
		t.Fatal("fingerprint is not deterministic")
	}
	b := a
	b.Owner = "git:git.test/b#t"
	if Fingerprint([]targets.ObservedApp{b}) == before {
		t.Error("fingerprint ignores the owner")
	}
	moves := describeMoves([]targets.ObservedApp{a}, []targets.ObservedApp{b})
	if len(moves) != 1 || !strings.Contains(moves[0], `owned by "git:git.test/b#t"`) {
		t.Errorf("moves %q, want one naming the new owner", moves)
	}
	// Without an owner, the line is what it was before owners existed.
	line := `{"n":"x","d":"` + a.Digest + `","m":true,"h":true}` + "\n"
	sum := sha256.Sum256([]byte(fingerprintDomain + line))
	if want := "sha256:" + hex.EncodeToString(sum[:]); before != want {
		t.Errorf("fingerprint of an app without owner %s, want the pre-owner %s", before, want)
	}
}

// TestSourceID: the spellings of one repository agree, different
// repositories and directories do not.
func TestSourceID(t *testing.T) {
	same := []struct{ repo, dir string }{
		{"https://git.test/acme/apps.git", "deploy"},
		{"https://user:pw@Git.Test/acme/apps", "deploy/"},
		{"ssh://git@git.test/acme/apps.git", "./deploy"},
		{"git@git.test:acme/apps.git", "deploy"},
		{"https://git.test/acme/apps/", "/deploy"},
	}
	want := "git:git.test/acme/apps//deploy"
	for _, c := range same {
		if got := SourceID(c.repo, c.dir); got != want {
			t.Errorf("SourceID(%q, %q) = %q, want %q", c.repo, c.dir, got, want)
		}
	}
	for _, c := range []struct{ repo, dir, want string }{
		{"https://git.test/acme/apps.git", ".", "git:git.test/acme/apps"},
		{"https://git.test/acme/apps.git", "", "git:git.test/acme/apps"},
		{"https://git.test:8443/acme/apps.git", "", "git:git.test:8443/acme/apps"},
		{"file:///srv/git/apps.git", "x", "git:/srv/git/apps//x"},
		{"/srv/git/apps.git", "x", "git:/srv/git/apps//x"},
		{"/srv/git/apps/../apps.git/", "x/../x", "git:/srv/git/apps//x"},
	} {
		if got := SourceID(c.repo, c.dir); got != c.want {
			t.Errorf("SourceID(%q, %q) = %q, want %q", c.repo, c.dir, got, c.want)
		}
	}
	if SourceID("https://git.test/acme/apps", "a") == SourceID("https://git.test/acme/apps", "b") ||
		SourceID("https://git.test/acme/apps", "") == SourceID("https://git.test/acme/other", "") {
		t.Error("different sources share an identity")
	}
	if OwnerOf("s", "t1") == OwnerOf("s", "t2") {
		t.Error("two targets of one spec share an owner")
	}
}
