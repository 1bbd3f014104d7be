package spec

import "testing"

// TestCheckQuantity: the quantities a kubernetes target's resources block
// accepts (a subset of Kubernetes' syntax, each of which the API accepts)
// and the ones it refuses.
func TestCheckQuantity(t *testing.T) {
	tests := []struct {
		in     string
		memory bool
		ok     bool
	}{
		{"100m", false, true}, {"1", false, true}, {"0.5", false, true}, {"1.5", false, true}, {".25", false, true},
		{"2.", false, true}, {"1k", false, true}, {"1000000", false, true}, {"1m", false, true},
		{"128Mi", true, true}, {"1G", true, true}, {"1024", true, true}, {"1.5Gi", true, true}, {"4Ei", true, true},
		{"", false, false}, {"0", false, false}, {"0m", false, false}, {"-1", false, false}, {"+1", false, false},
		{"1e3", false, false}, {"100 m", false, false}, {"0.0001", false, false}, {"1.0005", false, false},
		{"1000001", false, false}, {"1u", false, false}, {"1n", false, false}, {"1mi", true, false},
		{"100m", true, false}, {"0.5", true, false}, {"5Ei", true, false}, {"1234567890123456", true, false},
		{"Mi", true, false}, {".", true, false}, {"1..2", true, false},
	}
	for _, tc := range tests {
		err := checkQuantity(tc.in, tc.memory)
		if (err == nil) != tc.ok {
			t.Errorf("checkQuantity(%q, memory=%v) = %v, want ok=%v", tc.in, tc.memory, err, tc.ok)
		}
	}
}
