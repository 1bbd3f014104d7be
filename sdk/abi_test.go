package sdk

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// TestCodeErrorCoversABI: every result code of targets/host/abi maps to its
// own error, and success codes to nil. The SDK reads the codes from abi
// itself, so this guards the mapping, not the values.
func TestCodeErrorCoversABI(t *testing.T) {
	tests := []struct {
		code int32
		want error
	}{
		{abi.OK, nil},
		{7, nil}, // a length
		{abi.ErrNotFound, ErrNotFound},
		{abi.ErrDenied, ErrDenied},
		{abi.ErrIO, ErrIO},
		{abi.ErrTooLarge, ErrTooLarge},
		{abi.ErrInvalid, ErrInvalid},
		{abi.ErrUnsupported, ErrUnsupported},
		{-100, ErrUnsupported}, // a code newer than this SDK
	}
	for _, tt := range tests {
		if got := CodeError(tt.code); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("CodeError(%d) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// TestLogLevelsAreSlogs: the SDK passes slog levels to the host's log
// function as they are, which is right only while abi's levels are slog's.
func TestLogLevelsAreSlogs(t *testing.T) {
	for level, want := range map[slog.Level]int32{
		slog.LevelDebug: abi.LevelDebug, slog.LevelInfo: abi.LevelInfo,
		slog.LevelWarn: abi.LevelWarn, slog.LevelError: abi.LevelError,
	} {
		if int32(level) != want {
			t.Errorf("slog level %v is %d, abi says %d", level, int32(level), want)
		}
	}
}
