package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// hexHMAC is an independent HMAC-SHA256, as a receiver would write it.
func hexHMAC(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// count returns ferry_notifications_total{sink,kind,result} from reg.
func count(t *testing.T, reg *prometheus.Registry, sink string, kind Kind, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["sink"] == sink && l["kind"] == string(kind) && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}
