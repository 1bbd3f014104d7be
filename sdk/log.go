package sdk

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
)

// Logger returns a logger whose records go to the host's structured log,
// labelled there with the app and component. Attributes are rendered into
// the message as key=value pairs.
func Logger() *slog.Logger { return slog.New(&logHandler{}) }

type logHandler struct {
	prefix string // rendered attrs from WithAttrs
	group  string
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	hostcall.Log(int32(r.Level), b.String())
	return nil
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	b.WriteByte(' ')
	if group != "" {
		b.WriteString(group)
		b.WriteByte('.')
	}
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.String())
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		writeAttr(&b, h.group, a)
	}
	return &logHandler{prefix: b.String(), group: h.group}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &logHandler{prefix: h.prefix, group: g}
}
