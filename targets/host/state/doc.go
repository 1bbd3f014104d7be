// Package state is ferry-host's own state directory: what it has deployed,
// kept so that a restarted host serves the same apps again without asking
// the registry.
//
// For each app the directory holds the current and the previous version:
// the artifact reference and digest, the resolved deploy.App, the verified
// cosign signatures (payload and signature, so the host can re-verify them
// locally with signer.VerifyLocal before it runs anything), and the Wasm
// modules and the components' files archives (the artifact's files layers,
// tar), content-addressed by digest. Secret values live in separate
// files readable by the owner only (0600); they are never logged.
//
// Layout (the directory itself is 0700):
//
//	DIR/apps/<name>/app.json               the record (Record, with the host's own health rollback, if any), 0600
//	DIR/apps/<name>/secrets-<random>.json  one per version with secrets, 0600
//	DIR/blobs/sha256/<hex>                 Wasm modules and files archives by digest, 0644
//
// Every file is written atomically (temporary file, fsync, rename, fsync of
// the directory), secrets and blobs before the record that names them, so a
// crash leaves either the old record or the new one, each complete. Blobs
// are verified against their digest on every read; a blob or record that
// fails is reported with ErrCorrupt and concerns that app alone.
//
// A Store is safe for concurrent use; one process should own a directory.
package state
