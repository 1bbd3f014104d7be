package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/builder/hostimage"
	"github.com/ferry-wasm/ferry/signer"
)

func newImageCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build and push the ferry-host container image",
		Long: `image builds ferry's own ferry-host OCI image (what the kubernetes target's
pods run in single-app mode: ferry-host app --ref ...) without Docker.`,
		Example: `  ferry image push 127.0.0.1:5000/ferry/host:dev --key cosign.key
  make image REPO=registry.example.com/ferry/host:v1`,
	}
	cmd.AddCommand(newImagePushCmd(s))
	return cmd
}

// imagePushResult is what `ferry image push -o json` prints.
type imagePushResult struct {
	// Ref is the index, REPO@sha256:<hex>: what a target's image field names.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Tag is REPO:TAG when a tag was given.
	Tag       string          `json:"tag,omitempty"`
	Images    []platformImage `json:"images"`
	Signature string          `json:"signature,omitempty"`
	KeyID     string          `json:"key_id,omitempty"`
}

type platformImage struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
}

func newImagePushCmd(s streams) *cobra.Command {
	var (
		keyPath   string
		noSign    bool
		source    string
		platforms []string
		reg       registryFlags
		o         outputFlag
	)
	cmd := &cobra.Command{
		Use:   "push REPO[:TAG]",
		Short: "Build the multi-arch ferry-host image, push it and sign its digest",
		Long: `push compiles a static ferry-host from the source in --source (a checkout of
ferry) for linux/amd64, linux/arm64 and linux/arm/v7, puts each binary as
/ferry-host in one layer on an empty base, pushes the OCI image index to
REPO (and tags it when TAG is given), and signs the index digest with --key
in cosign's .sig format, as apps are signed (--no-sign skips that). The
build is reproducible: the same commit and Go version give the same digest;
every timestamp in the image is SOURCE_DATE_EPOCH (seconds), or the Unix
epoch without it. It prints the index as REPO@sha256:..., the reference a
kubernetes target's image field takes.`,
		Example: `  ferry image push 127.0.0.1:5000/ferry/host:dev --key cosign.key
  ferry image push registry.example.com/ferry/host:v1 --no-sign -o json
  ferry image push 127.0.0.1:5000/ferry/host --platform linux/amd64 --source ~/src/ferry
  cosign verify --key cosign.pub --insecure-ignore-tlog 127.0.0.1:5000/ferry/host@sha256:...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo := args[0]
			if strings.Contains(repo, "@") {
				return withCode(exitUsage, fmt.Errorf("push to REPO or REPO:TAG, not a digest (%s)", repo))
			}
			opts := hostimage.Options{Dir: source, Logger: slog.New(slog.NewTextHandler(s.err, nil))}
			for _, p := range platforms {
				pl, err := hostimage.ParsePlatform(p)
				if err != nil {
					return withCode(exitUsage, err)
				}
				opts.Platforms = append(opts.Platforms, pl)
			}
			if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
				sec, err := strconv.ParseInt(e, 10, 64)
				if err != nil || sec < 0 {
					return withCode(exitUsage, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", e))
				}
				opts.Created = time.Unix(sec, 0)
			}
			var key *signer.PrivateKey
			if !noSign {
				k, err := loadKey(s, keyPath)
				if err != nil {
					return withCode(exitError, err)
				}
				key = k
			}
			c, err := reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			idx, err := hostimage.Build(ctx, opts)
			if err != nil {
				return withCode(exitError, err)
			}
			ref, err := hostimage.Push(ctx, idx, repo, hostimage.PushOptions{PlainHTTP: reg.insecure, Credentials: c.CredentialFor})
			if err != nil {
				return withCode(exitError, err)
			}
			_, dgst, _ := strings.Cut(ref, "@")
			res := imagePushResult{Ref: ref, Digest: dgst, Images: []platformImage{}}
			if repoPart, tag := splitTag(repo); tag != "" {
				res.Tag = repoPart + ":" + tag
			}
			man, err := idx.IndexManifest()
			if err != nil {
				return withCode(exitError, err)
			}
			for _, m := range man.Manifests {
				p := hostimage.Platform{OS: m.Platform.OS, Arch: m.Platform.Architecture, Variant: m.Platform.Variant}
				res.Images = append(res.Images, platformImage{Platform: p.String(), Digest: m.Digest.String()})
			}
			if key != nil {
				sr, err := signer.Sign(ctx, ref, key, signer.SignOptions{Registry: reg.signerOptions(c)})
				if err != nil {
					return withCode(exitError, fmt.Errorf("pushed %s, but signing it failed: %w", ref, err))
				}
				res.Signature, res.KeyID = sr.SignatureRef, sr.KeyID
			}
			if o.json() {
				return writeJSON(s.out, res)
			}
			fmt.Fprintf(s.out, "Pushed %s\n", res.Ref)
			if res.Tag != "" {
				fmt.Fprintf(s.out, "Tagged %s\n", res.Tag)
			}
			for _, im := range res.Images {
				fmt.Fprintf(s.out, "  %-14s %s\n", im.Platform, im.Digest)
			}
			if res.Signature != "" {
				fmt.Fprintf(s.out, "Signed %s\nSignature: %s\nKey: %s\n", res.Digest, res.Signature, res.KeyID)
			} else {
				fmt.Fprintln(s.out, "Not signed (--no-sign).")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "cosign.key", "private key file (cosign format) that signs the index digest")
	cmd.Flags().BoolVar(&noSign, "no-sign", false, "push without signing")
	cmd.Flags().StringVar(&source, "source", ".", "the ferry checkout (module root) to build ferry-host from")
	cmd.Flags().StringSliceVar(&platforms, "platform", nil, "platforms to build, os/arch[/variant] (repeatable; default linux/amd64, linux/arm64, linux/arm/v7)")
	reg.register(cmd)
	o.register(cmd)
	return cmd
}

// splitTag splits "host:port/repo:tag" into the repository and the tag
// ("" when none).
func splitTag(ref string) (string, string) {
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}
