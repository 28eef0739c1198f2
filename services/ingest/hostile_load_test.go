package ingest_test

// Slow clients and floods, through a real listener with the production
// server settings (short timeouts here, set through ingest.Config as an
// operator would through INGEST_READ_HEADER_TIMEOUT and INGEST_READ_TIMEOUT).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/services/ingest"
)

const (
	slowHeaderTimeout = 400 * time.Millisecond
	slowReadTimeout   = 1200 * time.Millisecond
	// slack is how much later than its timeout the server may cut a client
	// on a busy machine.
	slack = 3 * time.Second
)

// trickle opens a connection, writes head, then one byte of rest every
// interval, until the server answers or closes the connection, or rest runs
// out. It returns what the server sent (nothing when it just closed) and
// when its first byte, or the close, came.
func trickle(t *testing.T, addr, head, rest string, interval time.Duration) (answer string, after time.Duration) {
	t.Helper()
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(20 * time.Second))
	type got struct {
		answer string
		after  time.Duration
	}
	read := make(chan got, 1)
	go func() {
		var first [1]byte
		n, _ := conn.Read(first[:])
		at := time.Since(start)
		b, _ := io.ReadAll(conn)
		read <- got{string(first[:n]) + string(b), at}
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case g := <-read:
			return g.answer, g.after
		case <-tick.C:
			if i < len(rest) {
				if _, err := conn.Write([]byte{rest[i]}); err != nil {
					g := <-read
					return g.answer, g.after
				}
			}
		}
	}
}

func TestHostileSlowClients(t *testing.T) {
	t.Parallel()
	l := startLiveIngest(t, ingest.Config{ReadHeaderTimeout: slowHeaderTimeout, ReadTimeout: slowReadTimeout})
	body := envelopeWith("magento_entity_id", "5")
	validHead := func(key string, length int) string {
		return "POST /webhooks/magento/t1/invoice.created HTTP/1.1\r\nHost: ingest.test\r\n" +
			"Authorization: Bearer " + mintToken(t, apiKey, tenantID) + "\r\nContent-Type: application/json\r\n" +
			"Idempotency-Key: " + key + "\r\nContent-Length: " + fmt.Sprint(length) + "\r\n\r\n"
	}

	// net/http closes the connection when the headers time out, silently or,
	// when the deadline cuts a line in two, with a plain 400.
	cutHeaders := func(t *testing.T, answer string, after time.Duration) {
		t.Helper()
		if answer != "" && !strings.HasPrefix(answer, "HTTP/1.1 400 ") || after > slowHeaderTimeout+slack {
			t.Fatalf("after %v the server answered %q; want the connection closed (or a 400) within %v", after, answer, slowHeaderTimeout+slack)
		}
	}
	t.Run("headers trickled: cut at ReadHeaderTimeout", func(t *testing.T) {
		answer, after := trickle(t, l.addr, "POST /webhooks/magento/t1/invoice.created HTTP/1.1\r\n",
			strings.Repeat("X-Slow: y\r\n", 1000), 20*time.Millisecond)
		cutHeaders(t, answer, after)
	})
	t.Run("request line trickled: cut at ReadHeaderTimeout", func(t *testing.T) {
		answer, after := trickle(t, l.addr, "", "POST /webhooks/magento/t1/invoice.created HTTP/1.1\r\n", 50*time.Millisecond)
		cutHeaders(t, answer, after)
	})
	t.Run("body trickled: cut at ReadTimeout, answered 503 so the shop retries", func(t *testing.T) {
		answer, after := trickle(t, l.addr, validHead("slow:body", len(body)), body, 100*time.Millisecond)
		if after > slowReadTimeout+slack {
			t.Fatalf("cut after %v, want within %v", after, slowReadTimeout+slack)
		}
		wantTransient(t, answer)
	})
	t.Run("body never sent", func(t *testing.T) {
		answer, after := trickle(t, l.addr, validHead("slow:nobody", len(body)), "", time.Hour)
		if after > slowReadTimeout+slack {
			t.Fatalf("cut after %v, want within %v", after, slowReadTimeout+slack)
		}
		wantTransient(t, answer)
	})
	t.Run("unauthenticated body trickled: refused before the body is read", func(t *testing.T) {
		head := strings.Replace(validHead("slow:unauth", len(body)), "Bearer ", "Bearer x", 1)
		answer, after := trickle(t, l.addr, head, body, 100*time.Millisecond)
		if !strings.HasPrefix(answer, "HTTP/1.1 401") || after > slack {
			t.Fatalf("after %v: %q; want 401 at once", after, answer)
		}
	})
	t.Run("idle keep-alive connection: cut after a valid request", func(t *testing.T) {
		// A keep-alive client that sends one request and then trickles the
		// next request's headers is cut by ReadHeaderTimeout too.
		conn, err := net.Dial("tcp", l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_ = conn.SetDeadline(start.Add(20 * time.Second))
		if _, err := io.WriteString(conn, validHead("slow:keepalive", len(body))+body); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("first request: %v %v", res, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_, _ = io.WriteString(conn, "POST /webhooks/magento/t1/invoice.created HTTP/1.1\r\n")
		rest, _ := io.ReadAll(br)
		if len(rest) != 0 || time.Since(start) > slowHeaderTimeout+slack {
			t.Fatalf("after %v: %q", time.Since(start), rest)
		}
	})
	t.Run("slowloris: 100 trickling connections, valid deliveries still go through", func(t *testing.T) {
		var wg sync.WaitGroup
		var cut atomic.Int64
		for range 100 {
			wg.Go(func() {
				conn, err := net.Dial("tcp", l.addr)
				if err != nil {
					return
				}
				defer conn.Close()
				start := time.Now()
				_ = conn.SetDeadline(start.Add(15 * time.Second))
				_, _ = io.WriteString(conn, "POST /webhooks/magento/t1/invoice.created HTTP/1.1\r\n")
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = io.ReadAll(conn)
				}()
				for {
					select {
					case <-done:
						if time.Since(start) <= slowHeaderTimeout+slack {
							cut.Add(1)
						}
						return
					case <-time.After(30 * time.Millisecond):
						if _, err := io.WriteString(conn, "X: y\r\n"); err != nil {
							<-done
							cut.Add(1)
							return
						}
					}
				}
			})
		}
		for i := range 5 {
			for _, who := range []string{"{token}", "{token2}"} {
				r := webhookRequest(fmt.Sprintf("slowloris:%d", i), body)
				r.Header[0][1] = "Bearer " + who
				if who == "{token2}" {
					r.Target = "/webhooks/magento/t2/invoice.created"
				}
				if res := l.send(t, r); res.Code != http.StatusAccepted {
					t.Errorf("valid delivery during the slowloris: %d %s", res.Code, res.Body)
				}
			}
		}
		wg.Wait()
		if cut.Load() != 100 {
			t.Errorf("%d of 100 trickling connections cut within %v", cut.Load(), slowHeaderTimeout+slack)
		}
	})

	// Only the keep-alive request and the ten valid deliveries were published.
	if n := l.outboxCount(t); n != 11 {
		t.Errorf("%d messages on OUTBOX, want 11", n)
	}
	assertNoServerErrors(t, l, true)
}

// wantTransient checks the answer to a body that never arrived: 503 (the
// shop retries; a 4xx would dead-letter the row) or a closed connection.
func wantTransient(t *testing.T, answer string) {
	t.Helper()
	if answer == "" {
		return
	}
	if !strings.HasPrefix(answer, "HTTP/1.1 503") || !strings.Contains(answer, "could not read the request body") {
		t.Fatalf("answer %q; want 503 naming the body", answer)
	}
}

// heapSampler records the largest heap in use while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 { close(h.stop); <-h.done; return h.peak.Load() }

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// patternReader yields n bytes of a JSON body without holding them: the
// flood's bodies must not be counted in the server's heap. It waits hold
// before the suffix, so that every body the server admits is in its memory
// at the same time.
type patternReader struct {
	prefix, suffix string
	n, off         int64
	hold           time.Duration
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	end := p.n - int64(len(p.suffix))
	if p.off == end && p.hold > 0 {
		time.Sleep(p.hold) // a slow client: holding the last byte back is the behaviour under test
		p.hold = 0
	}
	if p.off < end && int64(len(b)) > end-p.off {
		b = b[:end-p.off] // stop before the suffix, to hold there
	}
	i := 0
	for ; i < len(b) && p.off < p.n; i, p.off = i+1, p.off+1 {
		switch {
		case p.off < int64(len(p.prefix)):
			b[i] = p.prefix[p.off]
		case p.off >= p.n-int64(len(p.suffix)):
			b[i] = p.suffix[p.off-(p.n-int64(len(p.suffix)))]
		default:
			b[i] = 'x'
		}
	}
	return i, nil
}

// TestHostileFlood floods ingest from one tenant with valid, invalid and
// maximum-size requests at once. Every answer is 202, a JSON 4xx or a 503
// that says to retry; tenant t2's deliveries made during the flood all
// succeed; what is published is exactly what was accepted; the heap stays
// bounded during the flood and returns to where it was.
func TestHostileFlood(t *testing.T) {
	// Not parallel: the heap is measured for the whole process.
	const maxBody = ingest.DefaultMaxBodyBytes
	l := startLiveIngest(t, ingest.Config{TenantMaxInFlight: 8})
	// Warm up (connections, pools, the first allocation of everything).
	for i := range 3 {
		if res := l.send(t, webhookRequest(fmt.Sprintf("warm:%d", i), envelopeWith("magento_entity_id", "1"))); res.Code != http.StatusAccepted {
			t.Fatalf("warm-up: %d %s", res.Code, res.Body)
		}
	}
	before := heapAfterGC()
	sampler := sampleHeap()
	start := time.Now()

	type result struct {
		kind string
		code int
		body string
	}
	results := make(chan result, 1000)
	var wg sync.WaitGroup
	// At most 100 clients at once: more only measures how fast this machine
	// accepts connections, and t1's limit is 8.
	clients := make(chan struct{}, 100)
	fire := func(kind string, n int, req func(i int) rawRequest) {
		for i := range n {
			wg.Go(func() {
				clients <- struct{}{}
				defer func() { <-clients }()
				res, err := l.try(t, req(i))
				if err != nil {
					t.Errorf("%s %d: %v", kind, i, err)
				}
				results <- result{kind, res.Code, string(res.Body)}
			})
		}
	}
	big := func(i int, prefix string) rawRequest {
		r := webhookRequest(fmt.Sprintf("big:%s:%d", prefix, i), "")
		r.BodyReader = &patternReader{prefix: prefix, suffix: `"}`, n: maxBody, hold: 300 * time.Millisecond}
		r.BodyLen = maxBody
		return r
	}
	// Valid small deliveries, each with its own key.
	fire("valid", 300, func(i int) rawRequest {
		return webhookRequest(fmt.Sprintf("flood:%d", i), envelopeWith("magento_entity_id", fmt.Sprint(i)))
	})
	// Bodies of exactly the limit that are read in full and then refused.
	fire("big-invalid", 100, func(i int) rawRequest { return big(i, `{"magento_entity_id":-1,"payload":"`) })
	// Bodies over the limit, announced and chunked.
	fire("over", 50, func(i int) rawRequest {
		r := big(i, `{"magento_entity_id":1,"payload":"`)
		r.BodyLen = maxBody + 1
		r.BodyReader.(*patternReader).n = maxBody + 1
		r.Chunked = i%2 == 0
		return r
	})
	// Big bodies with a bad token: refused before the body is read.
	fire("unauthorized", 100, func(i int) rawRequest {
		return big(i, `{"magento_entity_id":1,"payload":"`).set("Authorization", "Bearer junk."+fmt.Sprint(i)+".x")
	})
	// Garbage: too deeply nested.
	fire("garbage", 100, func(i int) rawRequest {
		return webhookRequest(fmt.Sprintf("garbage:%d", i), strings.Repeat("[", 100+i))
	})
	// Meanwhile t2's shop delivers one at a time, as a drain does.
	t2Failed := 0
	for i := range 20 {
		r := webhookRequest(fmt.Sprintf("t2:%d", i), envelopeWith("magento_entity_id", fmt.Sprint(i)))
		r.Target = "/webhooks/magento/t2/invoice.created"
		r.Header[0][1] = "Bearer {token2}"
		if res := l.send(t, r); res.Code != http.StatusAccepted {
			t2Failed++
			t.Errorf("t2's delivery %d during t1's flood: %d %s", i, res.Code, res.Body)
		}
	}
	wg.Wait()
	// Then waves of 100 bodies at the limit, each held just before its end:
	// the ones that get one of t1's slots are read in full (and refused:
	// 400), the others answered 503 at once. Without the limit, every one of
	// them would be in memory at the same time.
	for wave := range 3 {
		fire("big-wave", 100, func(i int) rawRequest { return big(wave*1000+i, `{"magento_entity_id":-1,"payload":"`) })
		wg.Wait()
	}
	close(results)
	elapsed := time.Since(start)
	peak := sampler.Stop()

	counts := map[string]int{}
	accepted := 0
	for r := range results {
		counts[fmt.Sprintf("%s %d", r.kind, r.code)]++
		switch {
		case r.code == http.StatusAccepted && r.kind == "valid":
			accepted++
		case r.code == http.StatusServiceUnavailable && strings.Contains(r.body, "Magento will retry"):
		case r.code == http.StatusBadRequest && strings.HasPrefix(r.kind, "big-") && strings.Contains(r.body, "magento_entity_id"):
		case r.code == http.StatusBadRequest && r.kind == "garbage" && strings.Contains(r.body, "nested"):
		case r.code == http.StatusRequestEntityTooLarge && r.kind == "over":
		case r.code == http.StatusUnauthorized && r.kind == "unauthorized":
		default:
			t.Errorf("%s: unexpected answer %d %.200s", r.kind, r.code, r.body)
		}
	}
	t.Logf("flood of %d requests in %v: %v", 650+3*100, elapsed.Round(time.Millisecond), counts)
	if accepted == 0 {
		t.Error("no valid delivery of the flood was accepted")
	}
	if counts["big-wave 400"] < 3 {
		t.Errorf("%d bodies at the limit were read in full, want at least one per wave", counts["big-wave 400"])
	}
	keys := l.outboxKeys(t)
	if got, want := len(keys[tenantID]), accepted+3; got != want {
		t.Errorf("t1: %d messages on OUTBOX, want the %d accepted", got, want)
	}
	if got := len(keys[tenant2]); got != 20-t2Failed {
		t.Errorf("t2: %d messages on OUTBOX, want %d", got, 20-t2Failed)
	}
	for _, k := range keys[tenantID] {
		if !strings.HasPrefix(k, "flood:") && !strings.HasPrefix(k, "warm:") {
			t.Errorf("published %q", k)
		}
	}

	// The bound: t1 holds at most TenantMaxInFlight bodies of at most
	// MaxBodyBytes (read into a buffer that may double once), plus the
	// connections and goroutines of 100 requests in flight, plus garbage the
	// collector has not reclaimed yet (the heap grows to twice the live data
	// before it runs). Without the tenant limit the peak is over 120 MiB.
	after := heapAfterGC()
	bound := uint64(8*2*maxBody) + 64<<20
	t.Logf("heap in use: %d MiB before, %d MiB peak, %d MiB after", before>>20, peak>>20, after>>20)
	if peak > before+bound {
		t.Errorf("heap peaked at %d MiB, %d MiB over the %d MiB before; want at most %d MiB over", peak>>20, (peak-before)>>20, before>>20, bound>>20)
	}
	if after > before+8<<20 {
		t.Errorf("heap in use after the flood is %d MiB, %d MiB more than before", after>>20, (after-before)>>20)
	}
	assertNoServerErrors(t, l, true)
}
