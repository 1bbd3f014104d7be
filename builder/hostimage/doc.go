// Package hostimage builds and pushes the ferry-host OCI image without
// Docker, with github.com/google/go-containerregistry: one static
// ferry-host binary per platform (CGO_ENABLED=0, -trimpath,
// -buildvcs=false) in a single layer on an empty base, OCI media types
// throughout, and a multi-arch image index for linux/amd64, linux/arm64
// and linux/arm/v7 (DefaultPlatforms). The entrypoint is /ferry-host, the
// user 65532:65532 (no root in the pod); the kubernetes target runs it as
// `ferry-host app ...` (package targets/host/single).
//
// The image is reproducible: every timestamp in it (the layer's file
// mtimes, the config's created time and history) is Options.Created (the
// Unix epoch by default; set it from SOURCE_DATE_EPOCH to stamp a
// commit's time), file owners are 0:0 with fixed modes, the layer is
// gzipped by Go's compress/gzip with no name or time in its header, and
// the Go builds themselves are reproducible. So the same source and Go
// version give the same index digest on any machine, and signing that
// digest (package signer) signs every platform's image.
//
// Build compiles and assembles (Binaries, then Assemble, which is pure);
// Push writes the index and its images to a registry and returns the
// index's REPO@DIGEST. Errors wrap ErrBuild, ErrInvalid or ErrPush.
package hostimage
