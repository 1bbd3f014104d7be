// Package open turns a spec target into the driver that deploys to it, in
// one place: Target picks the driver by the target's kind, gives it the
// operator's credential for its endpoints (checked against the endpoints
// the credential allows) and returns it with a connection identity (Key)
// that callers cache opened targets by.
//
// A kubernetes target in mode "host" opens as the Kubernetes driver
// (targets/kubernetes/driver), its cluster named by the target's kubeconfig
// and context (targets/kubernetes/kubeconfig). Kinds this version of ferry
// cannot drive yet (fleet, and kubernetes in mode "spinapp") are an
// *UnsupportedError (errors.Is ErrUnsupported), which commands report as a
// warning and skip. Package open imports spec, targets and the drivers;
// nothing below cmd/ needs to import it.
package open
