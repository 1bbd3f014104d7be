package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a size suffix to its multiplier. Matching is exact except
// that "kB" and "KB" are both accepted.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a size: a whole number of bytes ("1048576") or a whole
// number with a unit, binary ("512KiB", "64MiB", "1GiB", "1TiB") or decimal
// ("100kB", "100MB", "1GB", "1TB", "10B"). Spaces between number and unit are
// allowed. Negative and fractional sizes are errors wrapping ErrInvalidSize.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("%w: %q has no number", ErrInvalidSize, s)
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: %q is not a whole number of bytes with an optional unit (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", ErrInvalidSize, s)
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalidSize, s)
	}
	return n * mult, nil
}
