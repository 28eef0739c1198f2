package main

// The browser harness: the operator console driven by a real headless
// Chromium (Debian's chromium package; .ci/run installs it) through chromedp.
//
// A console browser test looks like this:
//
//	st, _ := startStack(t, ctx, stack.Options{})
//	defer st.Close()
//	b := startBrowser(t, ctx, st)   // headless Chromium, console errors recorded
//	b.Login()                       // through the login form
//	b.Page("tenants", "/dashboard", func(width int) {
//		b.WaitVisible(`#tenants`)   // runs at 1280 px, then at 390 px
//	})                              // each width: screenshot, no console error, no sideways scroll
//	b.Submit(map[string]string{`#name`: "Shop"}, `#create`) // fill, click, wait for the next page
//	b.WaitText(`.flash`, "created")
//
// Screenshots are test artefacts, never committed: they go to
// $LEDGER_TEST_ARTIFACTS/<test> when that is set, else to t.ArtifactDir()
// (kept with `go test -artifacts -outputdir DIR`, a temporary directory
// otherwise); the directory is logged. Chromium is $LEDGER_CHROMIUM, else
// chromium or google-chrome on the PATH. Every helper fails the test on error
// (with a screenshot of the moment), so flows read as a list of steps.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
)

// consoleWidths are the viewport widths every console page is checked at: a
// laptop and a phone.
var consoleWidths = []int{1280, 390}

// browserStepTimeout bounds one browser step (a navigation, a wait).
const browserStepTimeout = 30 * time.Second

// consoleBrowser is one headless Chromium tab on a stack's admin console.
type consoleBrowser struct {
	t    *testing.T
	st   *stack.Stack
	ctx  context.Context // the tab
	base string          // the admin HTTP origin
	dir  string          // screenshots
	shot int

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions since the last check
}

// chromiumPath finds the browser: $LEDGER_CHROMIUM, else chromium,
// chromium-browser or google-chrome on the PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LEDGER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's chromium package (apt-get install chromium; .ci/run does) or set LEDGER_CHROMIUM to the browser binary")
	return ""
}

// artifactDir is where the test's screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.ArtifactDir()
	if root := os.Getenv("LEDGER_TEST_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("browser screenshots: %s", dir)
	return dir
}

// startBrowser starts a headless Chromium (no sandbox when running as root,
// as in CI containers) with one tab, recording console errors and uncaught
// exceptions. It is closed when the test ends.
func startBrowser(t *testing.T, ctx context.Context, st *stack.Stack) *consoleBrowser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(consoleWidths[0], 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-GB"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &consoleBrowser{t: t, st: st, ctx: tab, base: st.AdminHTTPURL, dir: artifactDir(t)}
	// Listen starts the browser; its func runs on the tab's reader, before
	// the reply of the command that caused the event, so a check after an
	// action sees every error the action caused.
	err := chromedp.Listen(tab, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.record(fmt.Sprintf("uncaught exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					if a.Description != "" {
						args = append(args, a.Description)
					} else {
						args = append(args, string(a.Value))
					}
				}
				b.record("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.record(fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

func (b *consoleBrowser) record(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// takeProblems returns and forgets the console errors recorded so far.
func (b *consoleBrowser) takeProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// NoConsoleErrors fails the test if the page logged an error or threw since
// the last check (CSP violations and failed loads are errors too).
func (b *consoleBrowser) NoConsoleErrors(where string) {
	b.t.Helper()
	if p := b.takeProblems(); len(p) > 0 {
		b.t.Errorf("%s: the browser console has errors:\n  %s", where, strings.Join(p, "\n  "))
	}
}

// ExpectConsoleErrors forgets recorded errors matching every one of want (a
// page answered with an expected 4xx logs "Failed to load resource"); any
// other error fails the test.
func (b *consoleBrowser) ExpectConsoleErrors(where string, want *regexp.Regexp) {
	b.t.Helper()
	for _, p := range b.takeProblems() {
		if !want.MatchString(p) {
			b.t.Errorf("%s: unexpected browser console error: %s", where, p)
		}
	}
}

// Do runs chromedp actions in the tab, failing the test (with a screenshot)
// when one fails or takes longer than browserStepTimeout.
func (b *consoleBrowser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("browser step", err)
	}
}

// fail ends the test with a screenshot and the page's location.
func (b *consoleBrowser) fail(what string, err error) {
	b.t.Helper()
	b.Screenshot("failed")
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.t.Fatalf("%s failed at %s: %v", what, loc, err)
}

// browse runs one chromedp action that answers a value (chromedp.Text,
// chromedp.Evaluate[T], …), failing the test like Do.
func browse[T any](b *consoleBrowser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail("browser step", err)
	}
	return v
}

// Visit opens a console path (e.g. "/dashboard") and answers the HTTP
// status of the page.
func (b *consoleBrowser) Visit(path string) int64 {
	b.t.Helper()
	resp := browse(b, chromedp.NavigateResponse(b.base+path))
	return resp.Status
}

// Location is the current page's path and query.
func (b *consoleBrowser) Location() string {
	b.t.Helper()
	return strings.TrimPrefix(browse(b, chromedp.Location()), b.base)
}

// Text is the visible text of the first element matching the CSS selector.
func (b *consoleBrowser) Text(sel string) string {
	b.t.Helper()
	return browse(b, chromedp.Text(chromedp.CSS(sel)))
}

// Value is the value of the form field matching the CSS selector.
func (b *consoleBrowser) Value(sel string) string {
	b.t.Helper()
	return browse(b, chromedp.Value(chromedp.CSS(sel)))
}

// Exists reports whether an element matches the CSS selector now.
func (b *consoleBrowser) Exists(sel string) bool {
	b.t.Helper()
	return browse(b, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *consoleBrowser) WaitVisible(sel string) {
	b.t.Helper()
	b.Do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitText waits until the element matching sel contains want.
func (b *consoleBrowser) WaitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	var got string
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		var err error
		got, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.Screenshot("wait-text")
			b.t.Fatalf("waiting for %q in %s: have %q (err %v) at %s", want, sel, got, err, b.Location())
		}
		time.Sleep(100 * time.Millisecond) // polling the page; each try is a CDP round trip
	}
}

// Submit sets form fields (CSS selector → value; a select takes its option's
// value, a checkbox "on"/"off"), clicks the button matching the CSS
// selector, waits for the page it leads to (after any redirects) and answers
// its HTTP status. A click that loads no page (the browser's own validation
// refused an empty required field, a button outside a form) fails the test
// after browserStepTimeout. Set subtests' b.t = t so failures land there.
func (b *consoleBrowser) Submit(fields map[string]string, button string) int64 {
	b.t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		switch v {
		case "on", "off":
			acts = append(acts, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
				`(e => { if (e.type === "checkbox") e.checked = %t; else e.value = %q })(document.querySelector(%q))`, v == "on", v, sel)))
		default:
			acts = append(acts, chromedp.SetValue(chromedp.CSS(sel), v))
		}
	}
	b.Do(acts...)
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		b.fail("submitting "+button, err)
	}
	return resp.Status
}

// Screenshot saves a full-page PNG of the current page as NN-name.png.
func (b *consoleBrowser) Screenshot(name string) {
	b.t.Helper()
	b.shot++
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// SetWidth resizes the viewport (the page reflows; media queries apply).
func (b *consoleBrowser) SetWidth(width int) {
	b.t.Helper()
	if width < 600 {
		b.Do(chromedp.EmulateViewport(int64(width), 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
		return
	}
	b.Do(chromedp.EmulateViewport(int64(width), 900))
}

// Page opens path and checks it at each of consoleWidths: check runs at that
// width, then the page is screenshotted as name-<width>, must have logged no
// console error and must not scroll sideways (wide tables scroll inside
// their own box). The viewport is left at the first width.
func (b *consoleBrowser) Page(name, path string, check func(width int)) {
	b.t.Helper()
	b.Visit(path)
	for _, w := range consoleWidths {
		b.SetWidth(w)
		if check != nil {
			check(w)
		}
		b.Screenshot(fmt.Sprintf("%s-%d", name, w))
		overflow := browse(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if overflow > 1 {
			b.t.Errorf("%s at %d px: the page scrolls sideways by %d px", name, w, overflow)
		}
		b.NoConsoleErrors(fmt.Sprintf("%s at %d px", name, w))
	}
	b.SetWidth(consoleWidths[0])
}

// Login logs in through the login form with the stack's admin token and
// waits for the tenants page.
func (b *consoleBrowser) Login() {
	b.t.Helper()
	b.Visit("/login")
	b.Screenshot("login")
	if code := b.Submit(map[string]string{`#token`: b.st.AdminToken}, `form[action="/login"] button[type=submit]`); code != 200 {
		b.Screenshot("login-refused")
		b.t.Fatalf("login answered %d: %s", code, b.Text("main"))
	}
	if loc := b.Location(); !strings.HasPrefix(loc, "/dashboard") {
		b.t.Fatalf("after login the browser is at %s, want /dashboard", loc)
	}
	b.NoConsoleErrors("login")
}

// CSRF is the current page's form token (from its first form).
func (b *consoleBrowser) CSRF() string {
	b.t.Helper()
	return b.Value(`input[name=csrf]`)
}
