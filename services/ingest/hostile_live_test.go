package ingest_test

// The live ingest the hostile-input tests talk to: a real TCP listener served
// by the runtime's http.Server (process.Server, tuned by ingest.Program), and a
// raw HTTP/1.1 client that can send what net/http's client refuses to
// (repeated headers, NUL and CR bytes, lying Content-Length, trickled bytes).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/services/ingest"
)

// A second paired tenant, for isolation and for traffic that must keep
// flowing while t1 misbehaves.
const (
	tenant2 = "t2"
	apiKey2 = "byte8_lk_test_master_secret_t2"
)

// liveIngest is ingest listening on a real socket with the production server
// settings. Everything the service and the server log goes to logs.
type liveIngest struct {
	st   *store.Store
	js   jetstream.JetStream
	svc  *ingest.Service
	addr string
	logs *lockedBuffer
}

func startLiveIngest(t *testing.T, cfg ingest.Config) *liveIngest {
	t.Helper()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	for _, p := range []struct{ id, key string }{{tenantID, apiKey}, {tenant2, apiKey2}} {
		if _, err := st.CreateTenant(ctx, p.id, "Shop "+p.id); err != nil {
			t.Fatal(err)
		}
		if err := st.SetMagentoPaired(ctx, p.id, "https://"+p.id+".example", p.key); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(devtest.NATS(t), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := ingest.New(cfg, st, js, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Exactly what the runtime builds for cmd/ingest (libs/process runtime.go).
	prog := ingest.Program(cfg)
	srv := process.Server(log, ln.Addr().String(), svc.Handler())
	prog.Tune(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return &liveIngest{st: st, js: js, svc: svc, addr: ln.Addr().String(), logs: logs}
}

// lockedBuffer is an io.Writer safe for the concurrent writes of a logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rawRequest is one HTTP/1.1 request written byte for byte. Header values
// may contain "{token}" (a fresh token of t1) or "{token2}" (of t2).
type rawRequest struct {
	Method string // POST when empty
	Target string // the webhook of t1 for invoice.created when empty
	Proto  string // HTTP/1.1 when empty
	Header [][2]string
	// Body is sent with a Content-Length, unless Chunked, NoLength or a
	// Content-Length in Header says otherwise. BodyReader, when set, is sent
	// instead (streamed, for bodies the test does not want in memory).
	Body       []byte
	BodyReader io.Reader
	BodyLen    int64
	Chunked    bool
	NoLength   bool
	NoHost     bool
}

// webhookRequest is what the shop's drain sends: a fresh token, JSON, and an
// Idempotency-Key.
func webhookRequest(key, body string) rawRequest {
	return rawRequest{Header: [][2]string{
		{"Authorization", "Bearer {token}"},
		{"Content-Type", "application/json"},
		{"Idempotency-Key", key},
	}, Body: []byte(body)}
}

// set replaces every value of name with values (none: removes the header).
func (r rawRequest) set(name string, values ...string) rawRequest {
	var h [][2]string
	for _, kv := range r.Header {
		if !strings.EqualFold(kv[0], name) {
			h = append(h, kv)
		}
	}
	for _, v := range values {
		h = append(h, [2]string{name, v})
	}
	r.Header = h
	return r
}

// add appends one more header line.
func (r rawRequest) add(name, value string) rawRequest {
	r.Header = append(append([][2]string(nil), r.Header...), [2]string{name, value})
	return r
}

// mintToken returns a fresh outbound token of a tenant.
func mintToken(t testing.TB, key, tenant string) string {
	t.Helper()
	tok, err := magento.MintOutbound(key, tenant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// encode writes the request head (and the body, unless streamed).
func (l *liveIngest) encode(t testing.TB, r rawRequest) (head []byte, body io.Reader) {
	method, target, proto := cmpOr(r.Method, http.MethodPost), cmpOr(r.Target, "/webhooks/magento/t1/invoice.created"), cmpOr(r.Proto, "HTTP/1.1")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", method, target, proto)
	if !r.NoHost {
		b.WriteString("Host: ingest.test\r\n")
	}
	explicitLength := false
	for _, kv := range r.Header {
		v := kv[1]
		if strings.Contains(v, "{token}") {
			v = strings.ReplaceAll(v, "{token}", mintToken(t, apiKey, tenantID))
		}
		if strings.Contains(v, "{token2}") {
			v = strings.ReplaceAll(v, "{token2}", mintToken(t, apiKey2, tenant2))
		}
		explicitLength = explicitLength || strings.EqualFold(kv[0], "Content-Length")
		b.WriteString(kv[0] + ": " + v + "\r\n")
	}
	n := int64(len(r.Body))
	body = bytes.NewReader(r.Body)
	if r.BodyReader != nil {
		n, body = r.BodyLen, r.BodyReader
	}
	switch {
	case r.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
		body = chunked(body)
	case !r.NoLength && !explicitLength:
		b.WriteString("Content-Length: " + strconv.FormatInt(n, 10) + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes(), body
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// chunked frames a body in 1000-byte chunks. Closing the reader stops the
// goroutine that frames it.
func chunked(r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 1000)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := fmt.Fprintf(pw, "%x\r\n%s\r\n", n, buf[:n]); werr != nil {
					pw.CloseWithError(werr)
					return
				}
			}
			if err == io.EOF {
				_, werr := io.WriteString(pw, "0\r\n\r\n")
				pw.CloseWithError(werr)
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// rawResponse is one answer; Closed when the server closed the connection
// without answering.
type rawResponse struct {
	Code   int
	Header http.Header
	Body   []byte
	Closed bool
}

// send writes r on a new connection and reads the answer. The body is written
// while the answer is read, as net/http's client does, so an early answer
// (413, 401) is seen even when the server stops reading.
func (l *liveIngest) send(t testing.TB, r rawRequest) rawResponse {
	t.Helper()
	res, err := l.try(t, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// try is send for goroutines other than the test's: it returns its error.
func (l *liveIngest) try(t testing.TB, r rawRequest) (rawResponse, error) {
	conn, err := net.DialTimeout("tcp", l.addr, 20*time.Second)
	if err != nil {
		return rawResponse{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	head, body := l.encode(t, r)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := conn.Write(head); err != nil {
			return
		}
		_, _ = io.Copy(conn, body)
	}()
	defer func() {
		_ = conn.Close()
		<-wrote
		if c, ok := body.(io.Closer); ok {
			_ = c.Close() // stops a chunked body's framing goroutine
		}
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: cmpOr(r.Method, http.MethodPost)})
	if err != nil {
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			errors.As(err, &ne) && !ne.Timeout() || strings.Contains(err.Error(), "connection reset") {
			return rawResponse{Closed: true}, nil
		}
		return rawResponse{}, fmt.Errorf("reading the answer: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !strings.Contains(err.Error(), "connection reset") {
		return rawResponse{}, fmt.Errorf("reading the answer's body: %w", err)
	}
	return rawResponse{Code: res.StatusCode, Header: res.Header, Body: b}, nil
}

// jsonError decodes an error answer; ok is false when the body is not the
// JSON error object ingest writes.
func (r rawResponse) jsonError() (code, field, message string, ok bool) {
	var b struct {
		Error   string `json:"error"`
		Field   string `json:"field"`
		Message string `json:"message"`
	}
	if json.Unmarshal(r.Body, &b) != nil || b.Error == "" || b.Message == "" {
		return "", "", "", false
	}
	return b.Error, b.Field, b.Message, true
}

// outboxCount is the number of messages stored on OUTBOX.
func (l *liveIngest) outboxCount(t testing.TB) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := l.js.Stream(ctx, bus.StreamOutbox)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// outboxKeys returns the Idempotency-Key of every OUTBOX message, by tenant.
func (l *liveIngest) outboxKeys(t testing.TB) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := l.js.Stream(ctx, bus.StreamOutbox)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		// Nats-Msg-Id is tenant:key:run (ingest.MsgID); keys may hold ':'.
		id := m.Header.Get(nats.MsgIdHdr)
		tenant, rest, _ := strings.Cut(id, ":")
		key := rest[:max(0, strings.LastIndex(rest, ":"))]
		out[tenant] = append(out[tenant], key)
	}
	return out
}

// metric returns the sum of the samples of a metric family whose labels
// contain every wanted label pair, from the service's /metrics.
func (l *liveIngest) metricLines(t testing.TB) []string {
	t.Helper()
	res := l.send(t, rawRequest{Method: http.MethodGet, Target: "/metrics"})
	if res.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.Code, res.Body)
	}
	return strings.Split(string(res.Body), "\n")
}
