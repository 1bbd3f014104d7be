package leader_test

import (
	"errors"
	"net/http"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var metav1ObjectNamespace = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}

// dropTransport fails every request once drop is set: a candidate whose
// pod lost the network (or died) from the apiserver's point of view.
type dropTransport struct {
	drop atomic.Bool
}

func (d *dropTransport) wrap(rt http.RoundTripper) http.RoundTripper {
	return rtFunc(func(r *http.Request) (*http.Response, error) {
		if d.drop.Load() {
			return nil, errors.New("connection dropped by the test")
		}
		return rt.RoundTrip(r)
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
