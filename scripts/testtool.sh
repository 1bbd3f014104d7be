#!/usr/bin/env bash
# testtool.sh NAME — build (once) and print the path of an external tool that
# ferry's interop tests run. Builds go to $FERRY_TEST_CACHE (default
# $HOME/.cache/ferry-test) and are reused on later runs; a lock makes
# concurrent callers wait for one build instead of racing.
#
# Known names:
#   cosign-v2.6.5 cosign-v3.1.3   the real cosign CLI
#   oras-v1.3.6                   the oras CLI
#   registry-v3.1.2               CNCF Distribution as a separate process
#   etcd-v3.7.3                   etcd (wrapper module; go install refuses it)
#   kube-apiserver-v1.37.2        Kubernetes' control plane, from one shared
#   kube-controller-manager-v1.37.2  wrapper module (k8s.io/kubernetes has
#   kube-scheduler-v1.37.2        replace lines, so go install refuses it)
#   kwok-v0.8.0                   kwok, fake nodes that run pods
#   kwok-stages-v0.8.0.yaml       a file, not a program: kwok's node and pod
#                                 Stage YAMLs (from its module) joined with ---
set -euo pipefail

name=${1:?usage: testtool.sh NAME}
cache=${FERRY_TEST_CACHE:-$HOME/.cache/ferry-test}
bin="$cache/bin"
mkdir -p "$bin"
out="$bin/$name"

case "$name" in
  cosign-v2.6.5)   pkg=github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 ;;
  cosign-v3.1.3)   pkg=github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 ;;
  oras-v1.3.6)     pkg=oras.land/oras/cmd/oras@v1.3.6 ;;
  registry-v3.1.2) pkg=github.com/distribution/distribution/v3/cmd/registry@v3.1.2 ;;
  etcd-v3.7.3)     kind=etcd etcdver=v3.7.3 ;;
  kube-apiserver-v1.37.2 | kube-controller-manager-v1.37.2 | kube-scheduler-v1.37.2)
                   kind=kube kubever=v1.37.2 cmd=${name%-v1.37.2} ;;
  kwok-v0.8.0)     pkg=sigs.k8s.io/kwok/cmd/kwok@v0.8.0 ;;
  kwok-stages-v0.8.0.yaml) kind=kwokstages kwokver=v0.8.0 ;;
  *) echo "testtool.sh: unknown tool $name" >&2; exit 2 ;;
esac

# The Go environment every build here uses: the module proxy as this machine
# has it configured, no cgo, the local toolchain.
goenv=(GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0)

# kube_wrapper VERSION prints the directory of the one wrapper module the
# three Kubernetes commands are built in (so the second and third build reuse
# the packages the first compiled). k8s.io/kubernetes points its staging
# modules at ./staging/... with replace lines; the wrapper replaces each with
# the published k8s.io/<staging> module of the matching v0 version.
kube_wrapper() {
  local ver=$1 dir="$cache/src/kube-$1" gomod tmp
  exec 8>"$bin/.kube-src-$ver.lock"
  flock 8
  if [ ! -f "$dir/.done" ]; then
    echo "testtool.sh: writing the Kubernetes $ver wrapper module in $dir" >&2
    mkdir -p "$cache/src"
    tmp=$(mktemp -d "$cache/src/build.XXXXXX")
    gomod=$(cd "$tmp" && env "${goenv[@]}" go mod download -json "k8s.io/kubernetes@$ver" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    [ -f "$gomod" ] || { echo "testtool.sh: no go.mod for k8s.io/kubernetes@$ver" >&2; exit 1; }
    {
      echo "module ferrytest/kube"
      echo
      echo "go 1.25"
      echo
      echo "replace ("
      # "k8s.io/api => ./staging/src/k8s.io/api" -> "k8s.io/api => k8s.io/api v0.X.Y"
      awk -v v="v0.${ver#v1.}" '/=> \.\/staging\// { m = ($1 == "replace") ? $2 : $1; print "\t" m " => " m " " v }' "$gomod"
      echo ")"
    } >"$tmp/go.mod"
    n=$(grep -c '=> k8s.io/' "$tmp/go.mod")
    echo "testtool.sh: $n staging replace lines" >&2
    (cd "$tmp" && env "${goenv[@]}" go get \
      "k8s.io/kubernetes/cmd/kube-apiserver@$ver" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$ver" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$ver") >&2
    touch "$tmp/.done"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  exec 8>&-
  echo "$dir"
}

exec 9>"$bin/.$name.lock"
flock 9
if [ ! -e "$out" ]; then
  echo "testtool.sh: building $name (first run only; cached in $bin)" >&2
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  case "${kind:-install}" in
  install)
    # go install into a private GOBIN, then move the result into place atomically.
    (cd "$tmp" && env "${goenv[@]}" GOBIN="$tmp/bin" \
        go install -trimpath -ldflags='-s -w' "$pkg") >&2
    src=$(ls "$tmp/bin"/*)
    ;;
  etcd)
    # etcd's server module has replace lines too; a wrapper module requiring
    # it builds.
    (cd "$tmp" && env "${goenv[@]}" go mod init ferrytest/etcd &&
      env "${goenv[@]}" go get "go.etcd.io/etcd/server/v3@$etcdver" &&
      env "${goenv[@]}" go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3) >&2
    src=$tmp/etcd
    ;;
  kube)
    wrap=$(kube_wrapper "$kubever")
    minor=${kubever#v1.}
    minor=${minor%%.*}
    ld="-s -w"
    # Without these, /version reports v0.0.0 and clients cannot parse it.
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$kubever -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    (cd "$wrap" && env "${goenv[@]}" go build -trimpath -ldflags="$ld" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd") >&2
    src=$tmp/$cmd
    ;;
  kwokstages)
    dir=$(cd "$tmp" && env "${goenv[@]}" go mod download -json "sigs.k8s.io/kwok@$kwokver" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [ -d "$dir/kustomize/stage" ] || { echo "testtool.sh: no kustomize/stage in sigs.k8s.io/kwok@$kwokver" >&2; exit 1; }
    first=1
    for f in "$dir"/kustomize/stage/node/fast/*.yaml "$dir"/kustomize/stage/node/heartbeat-with-lease/*.yaml \
        "$dir"/kustomize/stage/pod/fast/*.yaml; do
      case "$(basename "$f")" in kustomization.yaml) continue ;; esac
      [ $first = 1 ] || echo "---"
      first=0
      awk 1 "$f" # ends the last line
    done >"$tmp/stages.yaml"
    src=$tmp/stages.yaml
    ;;
  esac
  mv "$src" "$out.tmp" && mv "$out.tmp" "$out"
fi
echo "$out"
