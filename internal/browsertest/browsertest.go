// Package browsertest drives a real headless Chromium (Debian's
// /usr/bin/chromium) from tests and benchmarks over the DevTools protocol
// (github.com/chromedp/chromedp): navigate, click, wait for a DOM
// condition with a deadline, evaluate JavaScript, save screenshots.
//
// Without chromium a test is skipped, except when the environment has CI
// set, where that is a failure: a CI run never passes by skipping the
// browser.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is the browser the tests drive.
const ChromiumPath = "/usr/bin/chromium"

// Browser is one headless Chromium with one tab. Its methods fail the
// test on error; they are not safe for concurrent use.
type Browser struct {
	t   testing
	ctx context.Context
	// Shots is the directory screenshots go to: $FERRY_SCREENSHOTS, or a
	// temporary directory of the test.
	Shots string
}

// testing is the part of testing.TB the browser uses.
type testing interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// New starts headless Chromium (as root too: --no-sandbox) for t and stops
// it when t ends.
func New(t testing) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (%v): the browser tests cannot run; install chromium", ChromiumPath, err)
		}
		t.Skipf("%s is missing: the browser tests need it (apt-get install chromium)", ChromiumPath)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &Browser{t: t, ctx: ctx, Shots: os.Getenv("FERRY_SCREENSHOTS")}
	if b.Shots == "" {
		b.Shots = t.TempDir()
	} else if err := os.MkdirAll(b.Shots, 0o755); err != nil {
		t.Fatalf("screenshots: %v", err)
	}
	// The first call starts the browser, which lives as long as that
	// call's context: it must be b.ctx itself, without a deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", ChromiumPath, err)
	}
	return b
}

// Run runs actions, failing the test after within.
func (b *Browser) Run(within time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, within)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage text: %s", err, b.Text())
	}
}

// Eval evaluates the JavaScript expression expr in b's page; a promise
// is awaited.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// JS runs the JavaScript expr, failing the test on an error.
func (b *Browser) JS(expr string) {
	b.t.Helper()
	if _, err := Eval[any](b, expr); err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
}

// Text is the page's visible text, cut to 3000 characters (for failure
// messages).
func (b *Browser) Text() string {
	s, err := Eval[string](b, `document.body ? document.body.innerText.slice(0, 3000) : ""`)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// Wait polls the JavaScript expression expr every 20 ms until it is
// true, failing the test (saying what) after within.
func (b *Browser) Wait(what, expr string, within time.Duration) {
	b.t.Helper()
	if err := b.WaitErr(expr, within); err != nil {
		b.t.Fatalf("the page did not show %s within %v (%v)\npage text:\n%s", what, within, err, b.Text())
	}
}

// WaitErr is Wait returning an error instead of failing.
func (b *Browser) WaitErr(expr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var lastErr error
	for {
		ok, err := Eval[bool](b, "Boolean("+expr+")")
		if lastErr = err; err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if lastErr == nil {
				lastErr = context.DeadlineExceeded
			}
			return lastErr
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Click clicks the element that the CSS selector matches, once one does,
// failing the test (saying what) after within. The element is found and
// clicked in one evaluation in the page, so a live update that replaces it
// between the two (which makes chromedp.Click fail with "Could not find
// node with given id") cannot get in the way.
func (b *Browser) Click(what, selector string, within time.Duration) {
	b.t.Helper()
	expr := `(() => { const e = document.querySelector(` + String(selector) + `); if (!e) return false; e.click(); return true; })()`
	if err := b.WaitErr(expr, within); err != nil {
		b.t.Fatalf("could not click %s (%s) within %v (%v)\npage text:\n%s", what, selector, within, err, b.Text())
	}
}

// Shot saves a full-page PNG screenshot as Shots/name.png.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.Shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// String quotes s as a JavaScript string literal.
func String(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
