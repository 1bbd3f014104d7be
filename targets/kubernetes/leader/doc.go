// Package leader runs a function only while this process holds a
// Kubernetes Lease (coordination.k8s.io/v1), with client-go's leader
// election: the way several replicas of the in-cluster agent make sure
// exactly one of them runs rounds.
//
// Run campaigns for the lease, calls lead with a context that is cancelled
// the moment leadership is lost, and returns when ctx ends (releasing the
// lease, so a successor takes over at once) or when leadership is lost
// (ErrLost: the caller should exit, as controller-runtime managers do, and
// be restarted as a follower). A leader that dies without releasing is
// replaced within the lease duration.
package leader
