package spec

import "github.com/hashicorp/hcl/v2/hclwrite"

// Format returns src in canonical HCL formatting (hclwrite.Format): aligned
// "=" signs, normalised spacing and indentation. It does not check that src
// is valid; formatting invalid source is best-effort.
func Format(src []byte) []byte {
	return hclwrite.Format(src)
}
