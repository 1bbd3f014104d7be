package plan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPlanFile feeds arbitrary bytes to UnmarshalPlan. It must never
// panic; a plan it accepts must encode with MarshalPlan, and that encoding
// must decode and re-encode to the same bytes (the plan file is stable).
//
//	go test ./sync/plan -run '^$' -fuzz FuzzPlanFile -fuzztime 60s
func FuzzPlanFile(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "plan.json")); err == nil {
		f.Add(b)
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"format":"ferry-plan","format_version":1}`))
	f.Add([]byte(`{"format":"ferry-plan","format_version":2}`))
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalPlan(b)
		if err != nil {
			return
		}
		enc, err := MarshalPlan(p)
		if err != nil {
			t.Fatalf("an accepted plan does not encode: %v", err)
		}
		p2, err := UnmarshalPlan(enc)
		if err != nil {
			t.Fatalf("an encoded plan does not decode: %v\n%s", err, enc)
		}
		enc2, err := MarshalPlan(p2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("plan file not stable:\n%s\n---\n%s", enc, enc2)
		}
		_ = p.Render(&bytes.Buffer{})
		_ = p.Applyable()
	})
}
