package ingest_test

// The hostile-input corpus: every way a request can be wrong that the tests
// could think of, sent through a real listener with the production server
// settings. Each case must get a clear 4xx (a JSON error naming the field or
// the problem, or net/http's own plain-text 4xx for requests it refuses
// before any handler runs), nothing may reach OUTBOX, valid requests sent in
// between must keep succeeding, and nothing may panic.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/services/ingest"
)

// hostileMaxBody is the body limit of the corpus's ingest, so that bodies at
// and over the limit stay small.
const hostileMaxBody = ingest.DefaultMaxBodyBytes

// hostileCase is one request and the answer it must get.
type hostileCase struct {
	Name string
	Req  rawRequest
	Code int
	// Err is the JSON "error" of the answer. Empty: net/http answers before
	// ingest sees the request (a plain-text 4xx), or the answer has no body
	// (HEAD).
	Err string
	// Names must appear (case-insensitively) in the answer's field or
	// message: the field or the problem the caller has to fix.
	Names string
}

// validEnvelope has every field the shop sends; fields are replaced one at a
// time by envelopeWith.
var envelopeFields = []string{"magento_entity_id", "website_id", "store_id", "occurred_at", "payload"}

func envelopeWith(field, raw string) string {
	values := map[string]string{
		"magento_entity_id": "7", "website_id": "1", "store_id": "1",
		"occurred_at": `"2026-04-29T10:11:12Z"`, "payload": `{"increment_id":"000000007","paid":false}`,
	}
	values[field] = raw
	var b strings.Builder
	b.WriteString("{")
	for i, f := range envelopeFields {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + f + `":` + values[f])
	}
	b.WriteString("}")
	return b.String()
}

// padTo pads an envelope's payload so that the body is exactly n bytes.
func padTo(n int) string {
	base := `{"magento_entity_id":7,"payload":{"increment_id":"000000007","pad":""}}`
	return strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("x", n-len(base))+`"`, 1)
}

func nested(open, close string, depth int, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

func utf16LE(s string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xfe})
	for _, r := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&b, binary.LittleEndian, r)
	}
	return b.Bytes()
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// hostileCorpus builds the cases. Every webhook case carries its own
// Idempotency-Key (hostile:N), so one wrongly accepted shows up on OUTBOX.
func hostileCorpus(t testing.TB) []hostileCase {
	var cases []hostileCase
	n := 0
	key := func() string { n++; return fmt.Sprintf("hostile:%d", n) }
	add := func(name string, req rawRequest, code int, errCode, names string) {
		cases = append(cases, hostileCase{Name: name, Req: req, Code: code, Err: errCode, Names: names})
	}
	body := func(name, b, names string) {
		add(name, webhookRequest(key(), b), http.StatusBadRequest, "invalid_request", names)
	}
	const bodyMsg = "one JSON object"
	const env = `{"magento_entity_id":7,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"000000007"}}`

	// Wrong JSON types, fractions, exponents, huge and negative numbers for
	// each integer field of the envelope.
	for _, field := range []string{"magento_entity_id", "website_id", "store_id"} {
		for _, v := range []string{
			`"42"`, `""`, `"abc"`, `true`, `false`, `[]`, `[1]`, `{}`, `{"id":1}`,
			`1.5`, `1.0`, `0.0`, `1e3`, `1E3`, `-1.5`, `1e-3`,
			`-1`, `-9223372036854775808`,
			`9223372036854775808`, `18446744073709551616`, `1e400`, strings.Repeat("9", 400),
		} {
			body(fmt.Sprintf("%s=%.20s", field, v), envelopeWith(field, v), field)
		}
	}
	body("magento_entity_id=null", envelopeWith("magento_entity_id", "null"), "magento_entity_id")
	body("magento_entity_id absent", `{"website_id":1,"payload":{}}`, "magento_entity_id")

	// occurred_at: wrong types, and text Postgres cannot store (it is kept
	// exactly as sent otherwise: see validCorpus).
	for _, v := range []string{
		`42`, `-1`, `1.5`, `true`, `[]`, `["2026-04-29T10:11:12Z"]`, `{}`,
		`"2026-04-29T10:11:12Z\u0000"`, `"\u0000"`,
	} {
		body(fmt.Sprintf("occurred_at=%.24q", v), envelopeWith("occurred_at", v), "occurred_at")
	}

	// Text Postgres's jsonb and text columns refuse (NUL, unpaired UTF-16
	// surrogates) and bytes that are not UTF-8, in the payload, in a nested key,
	// in an unknown field.
	for _, v := range []string{
		`"\u0000"`, `{"a":"x\u0000y"}`, `{"\u0000":1}`, `["\u0000"]`,
		`"\ud800"`, `"\udc00"`, `"\ud800x"`, `"\ud800\u0041"`, `"\udfff\ud800"`, `{"a":"\uDBFF"}`,
		"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "{\"\xfe\":1}",
		"\"\x80\x80\x80\"",
	} {
		body(fmt.Sprintf("payload=%.24q", v), envelopeWith("payload", v), "payload")
	}

	// Duplicate keys: which value counts depends on the parser, so none does.
	for _, tc := range []struct{ name, body, field string }{
		{"same value", `{"magento_entity_id":7,"magento_entity_id":7}`, "magento_entity_id"},
		{"different values", `{"magento_entity_id":7,"magento_entity_id":8}`, "magento_entity_id"},
		{"negative hidden first", `{"magento_entity_id":-1,"magento_entity_id":7}`, "magento_entity_id"},
		{"escaped spelling", `{"magento_entity_id":7,"magento_entity_\u0069d":8}`, "magento_entity_id"},
		{"website_id", `{"magento_entity_id":7,"website_id":1,"website_id":2}`, "website_id"},
		{"store_id", `{"magento_entity_id":7,"store_id":1,"store_id":2}`, "store_id"},
		{"occurred_at", `{"magento_entity_id":7,"occurred_at":"2026-04-29T10:11:12Z","occurred_at":"2026-04-30T10:11:12Z"}`, "occurred_at"},
		{"payload", `{"magento_entity_id":7,"payload":{},"payload":{"paid":true}}`, "payload"},
		{"unknown field", `{"magento_entity_id":7,"x":1,"x":2}`, "x"},
		{"inside payload", `{"magento_entity_id":7,"payload":{"paid":false,"paid":true}}`, "payload"},
		{"deep inside payload", `{"magento_entity_id":7,"payload":{"a":[{"b":1,"b":2}]}}`, "payload"},
	} {
		body("duplicate key: "+tc.name, tc.body, tc.field)
	}

	// Deep nesting, at the top and inside the payload.
	for _, d := range []int{65, 200, 10_000, 60_000} {
		body(fmt.Sprintf("payload nested %d deep in arrays", d), envelopeWith("payload", nested("[", "]", d-1, "1")), "nested")
		body(fmt.Sprintf("payload nested %d deep in objects", d), envelopeWith("payload", nested(`{"a":`, "}", d-1, "1")), "nested")
	}
	body("body nested 100000 deep", nested("[", "]", 100_000, ""), "nested")
	body("body nested open only", strings.Repeat("{", 100_000), "nested")

	// Bodies that are not one JSON object.
	for _, tc := range []struct{ name, body string }{
		{"empty", ""}, {"space", " "}, {"newline", "\n"}, {"open brace", "{"}, {"close brace", "}"},
		{"array", "[]"}, {"array of object", `[{"magento_entity_id":7}]`}, {"null", "null"}, {"true", "true"},
		{"number", "42"}, {"string", `"x"`}, {"two objects", env + "{}"}, {"trailing garbage", env + " x"},
		{"trailing comma after object", env + ","}, {"single quotes", `{'magento_entity_id':7}`},
		{"bare key", `{magento_entity_id:7}`}, {"trailing comma inside", `{"magento_entity_id":7,}`},
		{"comment", "/* c */" + env}, {"byte order mark", "\xef\xbb\xbf" + env},
		{"form encoded", "magento_entity_id=7&payload=x"}, {"XML", `<envelope><magento_entity_id>7</magento_entity_id></envelope>`},
		{"NaN", `{"magento_entity_id":NaN}`}, {"Infinity", `{"magento_entity_id":Infinity}`}, {"-Infinity", `{"magento_entity_id":-Infinity}`},
		{"hex", `{"magento_entity_id":0x10}`}, {"leading zero", `{"magento_entity_id":07}`}, {"plus sign", `{"magento_entity_id":+7}`},
		{"leading dot", `{"magento_entity_id":.5}`}, {"trailing dot", `{"magento_entity_id":7.}`},
		{"NUL first", "\x00" + env}, {"NUL inside", `{"magento_entity_id":7` + "\x00}"}, {"NUL alone", "\x00"},
		{"raw NUL in a string", "{\"magento_entity_id\":7,\"payload\":\"a\x00b\"}"},
		{"raw control in a string", "{\"magento_entity_id\":7,\"payload\":\"a\x01b\"}"},
		{"raw newline in a string", "{\"magento_entity_id\":7,\"payload\":\"a\nb\"}"},
		{"unterminated string", `{"magento_entity_id":7,"payload":"abc}`},
		{"bad escape", `{"magento_entity_id":7,"payload":"\x41"}`},
		{"short unicode escape", `{"magento_entity_id":7,"payload":"\u12"}`},
	} {
		body("body "+tc.name, tc.body, bodyMsg)
	}
	add("body UTF-16", webhookRequest(key(), string(utf16LE(env))), http.StatusBadRequest, "invalid_request", bodyMsg)
	add("body gzip without Content-Encoding", webhookRequest(key(), string(gzipped(env))), http.StatusBadRequest, "invalid_request", bodyMsg)

	// Authorization: missing, malformed, huge, repeated, someone else's.
	inbound, _ := magento.MintInbound(apiKey, tenantID, time.Now())
	for _, tc := range []struct {
		name   string
		values []string
		names  string
	}{
		{"missing", nil, "Authorization"},
		{"empty", []string{""}, "Authorization"},
		{"scheme only", []string{"Bearer"}, "Authorization"},
		{"scheme and space", []string{"Bearer "}, "Authorization"},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, "Authorization"},
		{"Token scheme", []string{"Token {token}"}, "Authorization"},
		{"two segments", []string{"Bearer a.b"}, "malformed"},
		{"junk segments", []string{"Bearer a.b.c"}, "malformed"},
		{"not base64", []string{"Bearer !!!.!!!.!!!"}, "malformed"},
		{"tampered signature", []string{"Bearer {token}x"}, "signature"},
		{"inbound token", []string{"Bearer " + inbound}, "signature"},
		{"t2's token on t1's URL", []string{"Bearer {token2}"}, "signature"},
		{"32 KiB token", []string{"Bearer " + strings.Repeat("a", 32<<10)}, "malformed"},
		{"not UTF-8", []string{"Bearer \xff\xfe.\xff.\xff"}, "malformed"},
		{"repeated, valid first", []string{"Bearer {token}", "Bearer junk"}, "more than once"},
		{"repeated, valid last", []string{"Bearer junk", "Bearer {token}"}, "more than once"},
		{"repeated, both valid", []string{"Bearer {token}", "Bearer {token}"}, "more than once"},
	} {
		add("Authorization "+tc.name, webhookRequest(key(), env).set("Authorization", tc.values...),
			http.StatusUnauthorized, "unauthorized", tc.names)
	}

	// Idempotency-Key: missing, too long, not UTF-8, repeated.
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"missing", nil},
		{"empty", []string{""}},
		{"129 characters", []string{strings.Repeat("k", 129)}},
		{"129 multibyte characters", []string{strings.Repeat("é", 129)}},
		{"16 KiB", []string{strings.Repeat("k", 16<<10)}},
		{"not UTF-8", []string{"invoice.created:\xff\xfe"}},
		{"overlong UTF-8", []string{"invoice.created:\xc0\xaf"}},
		{"repeated, same value", []string{"invoice.created:7", "invoice.created:7"}},
		{"repeated, different values", []string{"invoice.created:7", "invoice.created:8"}},
		{"repeated 1000 times", strings.Split(strings.Repeat("k,", 1000)[:1999], ",")},
	} {
		add("Idempotency-Key "+tc.name, webhookRequest("", env).set("Idempotency-Key", tc.values...),
			http.StatusBadRequest, "invalid_request", "Idempotency-Key")
	}

	// Content-Type and Content-Encoding: JSON in UTF-8 only, never compressed.
	for _, ct := range []string{
		"text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=utf-16", "application/json; charset=iso-8859-1", "application/json;;;=",
		"*/*", "application/jsonp", "application/json-seq", strings.Repeat("a", 16<<10),
	} {
		add(fmt.Sprintf("Content-Type %.30s", ct), webhookRequest(key(), env).set("Content-Type", ct),
			http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	}
	add("Content-Type repeated", webhookRequest(key(), env).set("Content-Type", "application/json", "text/plain"),
		http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	add("Content-Encoding gzip", webhookRequest(key(), string(gzipped(env))).set("Content-Encoding", "gzip"),
		http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Encoding")
	for _, ce := range []string{"deflate", "br", "compress", "gzip, identity", "x-unknown"} {
		add("Content-Encoding "+ce, webhookRequest(key(), env).set("Content-Encoding", ce),
			http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Encoding")
	}
	add("Content-Encoding repeated", webhookRequest(key(), env).set("Content-Encoding", "identity", "gzip"),
		http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Encoding")

	// Bodies over the limit, however their length is (not) announced.
	over := padTo(hostileMaxBody + 1)
	add("body one byte over the limit", webhookRequest(key(), over), http.StatusRequestEntityTooLarge, "payload_too_large", "larger than")
	chunkedOver := webhookRequest(key(), over)
	chunkedOver.Chunked = true
	add("chunked body one byte over the limit", chunkedOver, http.StatusRequestEntityTooLarge, "payload_too_large", "larger than")
	add("Content-Length of a terabyte", webhookRequest(key(), env).add("Content-Length", "1099511627776"),
		http.StatusRequestEntityTooLarge, "payload_too_large", "larger than")
	short := webhookRequest(key(), env).add("Content-Length", "10")
	add("Content-Length shorter than the body", short, http.StatusBadRequest, "invalid_request", bodyMsg)

	// Framing net/http refuses itself, before any handler: plain-text 4xx.
	for _, tc := range []struct {
		name string
		req  rawRequest
		code int
	}{
		{"Content-Length negative", webhookRequest(key(), env).add("Content-Length", "-1"), 400},
		{"Content-Length not a number", webhookRequest(key(), env).add("Content-Length", "ten"), 400},
		{"Content-Length beyond int64", webhookRequest(key(), env).add("Content-Length", "99999999999999999999"), 400},
		{"Content-Length twice, different", webhookRequest(key(), env).add("Content-Length", "5").add("Content-Length", "6"), 400},
		{"Idempotency-Key with NUL", webhookRequest("a\x00b", env), 400},
		{"Idempotency-Key with a control character", webhookRequest("a\x01b", env), 400},
		{"Idempotency-Key with a bare CR", webhookRequest("a\rb", env), 400},
		{"Authorization with NUL", webhookRequest(key(), env).set("Authorization", "Bearer \x00"), 400},
		{"header name with a space", webhookRequest(key(), env).add("Bad Header", "x"), 400},
		{"no Host", func() rawRequest { r := webhookRequest(key(), env); r.NoHost = true; return r }(), 400},
		{"Host twice", webhookRequest(key(), env).add("Host", "other.test"), 400},
		{"invalid percent-encoding in the path", func() rawRequest {
			r := webhookRequest(key(), env)
			r.Target = "/webhooks/magento/t1/%zz"
			return r
		}(), 400},
		{"headers over the limit (64 KiB)", webhookRequest(key(), env).add("X-Padding", strings.Repeat("p", 70<<10)), 431},
		{"2 MiB Authorization", webhookRequest(key(), env).set("Authorization", "Bearer "+strings.Repeat("a", 2<<20)), 431},
		{"10000 repeated Idempotency-Keys", webhookRequest("", env).set("Idempotency-Key", strings.Split(strings.Repeat("key-key-key,", 10000), ",")...), 431},
	} {
		add("net/http: "+tc.name, tc.req, tc.code, "", "")
	}

	// Methods other than POST.
	for _, m := range []string{"GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "post", "FOO", "CONNECT"} {
		r := webhookRequest(key(), env)
		r.Method = m
		add("method "+m, r, http.StatusMethodNotAllowed, "method_not_allowed", "POST")
	}
	head := webhookRequest(key(), "")
	head.Method, head.NoLength = http.MethodHead, true
	add("method HEAD", head, http.StatusMethodNotAllowed, "", "")

	// Paths that are not a webhook of a paired tenant.
	for _, tc := range []struct {
		target string
		code   int
		err    string
		names  string
	}{
		{"/webhooks/magento/t1", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/t1/", 404, "not_found", "no endpoint"},
		{"/webhooks/magento//invoice.created", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/t1/invoice.created/extra", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/t1/invoice.created/", 404, "not_found", "no endpoint"},
		{"/WEBHOOKS/magento/t1/invoice.created", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/t1/./invoice.created", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/x/../t1/invoice.created", 404, "not_found", "no endpoint"},
		{"/webhooks/magento/" + strings.Repeat("t", 16<<10) + "/invoice.created", 401, "unauthorized", "tenant"},
		{"/webhooks/magento/t1%2Fx/invoice.created", 401, "unauthorized", "tenant"},
		{"/webhooks/magento/%00/invoice.created", 401, "unauthorized", "tenant"},
		{"/webhooks/magento/t%C3%A9/invoice.created", 401, "unauthorized", "tenant"},
		{"/webhooks/magento/ghost/invoice.created", 401, "unauthorized", "unknown tenant"},
		{"/webhooks/magento/t2/invoice.created", 401, "unauthorized", "signature"},
		{"/webhooks/magento/t1/%00", 400, "invalid_request", "event"},
		{"/webhooks/magento/t1/INVOICE.CREATED", 400, "invalid_request", "event"},
		{"/webhooks/magento/t1/invoice.cr%C3%A9%C3%A9", 400, "invalid_request", "event"},
		{"/webhooks/magento/t1/invoice..created", 400, "invalid_request", "event"},
		{"/webhooks/magento/t1/" + strings.Repeat("a", 63) + ".b", 400, "invalid_request", "event"},
		{"/webhooks/magento/t1/" + strings.Repeat("a", 16<<10) + ".b", 400, "invalid_request", "event"},
	} {
		r := webhookRequest(key(), env)
		r.Target = tc.target
		add(fmt.Sprintf("path %.60s", tc.target), r, tc.code, tc.err, tc.names)
	}

	// The shop's other endpoints: bad queries, methods, credentials.
	get := func(target string) rawRequest {
		return rawRequest{Method: http.MethodGet, Target: target, Header: [][2]string{{"Authorization", "Bearer {token}"}, {"Accept", "application/json"}}}
	}
	for _, tc := range []struct{ query, field string }{
		{"", "entity_type"}, {"entity_id=1", "entity_type"}, {"entity_type=INVOICE&entity_id=1", "entity_type"},
		{"entity_type=order&entity_id=1", "entity_type"}, {"entity_type=invoice%00&entity_id=1", "entity_type"},
		{"entity_type=invoice&entity_type=order&entity_id=1", "entity_type"},
		{"entity_type=invoice&entity_type=invoice&entity_id=1", "entity_type"},
		{"entity_type=invoice", "entity_id"}, {"entity_type=invoice&entity_id=", "entity_id"},
		{"entity_type=invoice&entity_id=-1", "entity_id"}, {"entity_type=invoice&entity_id=1.5", "entity_id"},
		{"entity_type=invoice&entity_id=1e3", "entity_id"}, {"entity_type=invoice&entity_id=0x10", "entity_id"},
		{"entity_type=invoice&entity_id=99999999999999999999", "entity_id"},
		{"entity_type=invoice&entity_id=%201", "entity_id"}, {"entity_type=invoice&entity_id=1%00", "entity_id"},
		{"entity_type=invoice&entity_id=1&entity_id=2", "entity_id"},
		{"entity_type=invoice&entity_id=" + strings.Repeat("9", 16<<10), "entity_id"},
	} {
		add("status ?"+fmt.Sprintf("%.60s", tc.query), get("/v1/status?"+tc.query), http.StatusBadRequest, "invalid_request", tc.field)
	}
	for _, target := range []string{"/v1/status?entity_type=invoice&entity_id=1", "/v1/tile/health"} {
		add("no token on "+target, get(target).set("Authorization"), http.StatusUnauthorized, "unauthorized", "Authorization")
		add("repeated token on "+target, get(target).add("Authorization", "Bearer {token}"), http.StatusUnauthorized, "unauthorized", "more than once")
		r := get(target)
		r.Method = http.MethodPost
		add("POST "+target, r, http.StatusMethodNotAllowed, "method_not_allowed", "GET")
	}
	disc := rawRequest{Method: http.MethodGet, Target: "/v1/tenant/disconnect", Header: [][2]string{{"Authorization", "Bearer {token}"}}}
	add("GET disconnect", disc, http.StatusMethodNotAllowed, "method_not_allowed", "POST")
	disc.Method = http.MethodPost
	add("disconnect without a token", disc.set("Authorization"), http.StatusUnauthorized, "unauthorized", "Authorization")
	add("disconnect with t1's token twice", disc.add("Authorization", "Bearer {token}"), http.StatusUnauthorized, "unauthorized", "more than once")
	return cases
}

// validCorpus are requests at the edges of what is allowed: each must be
// accepted (202) and published once.
func validCorpus() []rawRequest {
	n := 0
	key := func() string { n++; return fmt.Sprintf("valid-edge:%d", n) }
	env := func(id int) string { return envelopeWith("magento_entity_id", fmt.Sprint(id)) }
	var out []rawRequest
	add := func(r rawRequest) { out = append(out, r) }
	add(webhookRequest(key(), env(1)).set("Authorization", "bearer {token}"))
	add(webhookRequest(key(), env(2)).set("Authorization", "BEARER   {token}  "))
	add(webhookRequest(key(), env(3)).set("Content-Type", "application/json; charset=utf-8"))
	add(webhookRequest(key(), env(4)).set("Content-Type", "Application/JSON;charset=\"UTF-8\""))
	add(webhookRequest(key(), env(5)).set("Content-Type"))
	add(webhookRequest(key(), env(6)).set("Content-Encoding", "identity"))
	c := webhookRequest(key(), env(7))
	c.Chunked = true
	add(c)
	old := webhookRequest(key(), env(8))
	old.Proto, old.NoHost = "HTTP/1.0", true
	add(old)
	many := webhookRequest(key(), env(9))
	for i := range 2000 {
		many = many.add(fmt.Sprintf("X-Junk-%d", i), "v")
	}
	add(many)
	add(webhookRequest(key(), padTo(hostileMaxBody)))
	atLimit := webhookRequest(key(), padTo(hostileMaxBody))
	atLimit.Chunked = true
	add(atLimit)
	add(webhookRequest(key(), envelopeWith("payload", `{"emoji":"\ud83d\ude00","raw":"😀","ascii":"\u0041","ffff":"\uffff"}`)))
	add(webhookRequest(key(), envelopeWith("payload", `[]`)))
	add(webhookRequest(key(), envelopeWith("payload", `null`)))
	add(webhookRequest(key(), `{"magento_entity_id":0}`))
	add(webhookRequest(key(), `{"magento_entity_id":9223372036854775807,"website_id":null,"store_id":null,"occurred_at":null}`))
	add(webhookRequest(key(), `{"magento_entity_id":1,"website_id":9223372036854775807,"store_id":0,"future_key":{"x":[1,2,3]}}`))
	// 64 levels in all: the body's object, then 63 in the payload.
	add(webhookRequest(key(), `{"magento_entity_id":1,"payload":`+nested("[", "]", 63, "1")+`}`))
	add(webhookRequest(strings.Repeat("é", 128), env(10)))
	add(webhookRequest(key(), " \t\n"+env(11)+"\r\n "))
	// occurred_at is kept exactly as sent (Go's decoder turns bytes that are not
	// UTF-8 and unpaired surrogates into U+FFFD, which Postgres stores); no
	// stage reads it, so any string is accepted.
	for _, v := range []string{
		`"2026-04-29T10:11:12+02:00"`, `""`, `"yesterday"`, `"2026-13-45T99:99:99Z"`, `"\ud800"`,
		"\"2026-04-29T10:11:12Z\xff\"", `"` + strings.Repeat("2", 4000) + `"`,
	} {
		add(webhookRequest(key(), envelopeWith("occurred_at", v)))
	}
	// Keys the envelope does not know are ignored (a newer module may send
	// more), whatever they hold: they are neither stored nor published.
	add(webhookRequest(key(), "{\"magento_entity_id\":7,\"note\":\"\xff\"}"))
	add(webhookRequest(key(), `{"magento_entity_id":7,"note":"\u0000","n":1e400}`))
	add(webhookRequest(key(), `{"magento_entity_id":7,"a\u0000b":1}`))
	add(webhookRequest(key(), "{\"magento_entity_id\":7,\"\xff\":1}"))
	q := webhookRequest(key(), env(12))
	q.Target = "/webhooks/magento/t1/invoice.created?from=cli"
	add(q)
	pe := webhookRequest(key(), env(13))
	pe.Target = "/webhooks/magento/%74%31/invoice%2Ecreated"
	add(pe)
	abs := webhookRequest(key(), env(14))
	abs.Target = "http://ingest.test/webhooks/magento/t1/invoice.created"
	add(abs)
	add(webhookRequest(key(), env(15)).add("Authorization-Extra", "Bearer junk"))
	// Trace context is optional: junk, huge or repeated, it is ignored, never
	// a reason to refuse a delivery or to make its event too big to publish.
	add(webhookRequest(key(), env(16)).add("traceparent", "00-zz-zz-01"))
	add(webhookRequest(key(), env(17)).add("traceparent", strings.Repeat("0", 20<<10)))
	add(webhookRequest(key(), env(18)).add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").
		add("traceparent", "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"))
	add(webhookRequest(key(), env(19)).add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").
		add("tracestate", strings.Repeat("k=v,", 5<<10)).add("baggage", strings.Repeat("k=v,", 5<<10)))
	return out
}

func TestHostileCorpus(t *testing.T) {
	t.Parallel()
	l := startLiveIngest(t, ingest.Config{MaxBodyBytes: hostileMaxBody})
	cases := hostileCorpus(t)
	if len(cases) < 200 {
		t.Fatalf("the corpus has %d cases, want at least 200", len(cases))
	}
	valid := validCorpus()
	t.Logf("%d hostile cases, %d valid edge cases", len(cases), len(valid))

	accepted := 0
	sendValid := func(t *testing.T, r rawRequest, what string) {
		t.Helper()
		res := l.send(t, r)
		if res.Code != http.StatusAccepted || !bytes.Contains(res.Body, []byte(`"sync_run_id"`)) {
			t.Errorf("%s: %d %s (closed %v), want 202 with a sync_run_id", what, res.Code, bytes.TrimSpace(res.Body), res.Closed)
			return
		}
		accepted++
	}
	for i, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			res := l.send(t, tc.Req)
			switch {
			case res.Closed:
				t.Fatalf("the connection was closed without an answer; want %d", tc.Code)
			case res.Code != tc.Code:
				t.Fatalf("status %d, want %d; body %.300s", res.Code, tc.Code, bytes.TrimSpace(res.Body))
			}
			if tc.Err == "" {
				return
			}
			code, field, msg, ok := res.jsonError()
			if !ok || code != tc.Err || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("answer %q (Content-Type %q) is not the JSON error %q", res.Body, res.Header.Get("Content-Type"), tc.Err)
			}
			if !strings.Contains(strings.ToLower(field+" "+msg), strings.ToLower(tc.Names)) {
				t.Errorf("answer %s does not name %q", bytes.TrimSpace(res.Body), tc.Names)
			}
			if len(res.Body) > 8<<10 {
				t.Errorf("answer of %d bytes: the shop shows operators only the first 8 KiB", len(res.Body))
			}
		})
		// A valid delivery between hostile ones still goes through.
		if i%4 == 3 {
			sendValid(t, webhookRequest(fmt.Sprintf("valid:%d", i), envelopeWith("magento_entity_id", fmt.Sprint(1000+i))), "valid request after "+tc.Name)
		}
	}
	for i, r := range valid {
		sendValid(t, r, fmt.Sprintf("valid edge case %d", i))
	}

	keys := l.outboxKeys(t)
	if got := len(keys[tenantID]) + len(keys[tenant2]); got != accepted {
		t.Errorf("%d messages on OUTBOX, want the %d accepted", got, accepted)
	}
	for tenant, ks := range keys {
		for _, k := range ks {
			if tenant != tenantID || strings.HasPrefix(k, "hostile:") {
				t.Errorf("published %s/%q: a hostile case reached OUTBOX", tenant, k)
			}
		}
	}
	assertNoServerErrors(t, l, false)
}

// assertNoServerErrors checks /metrics for 5xx answers (503 only when allowed)
// and the logs for panics.
func assertNoServerErrors(t *testing.T, l *liveIngest, allow503 bool) {
	t.Helper()
	for _, line := range l.metricLines(t) {
		if !strings.HasPrefix(line, "ledger_ingest_http_requests_total{") || strings.HasSuffix(line, " 0") {
			continue
		}
		if strings.Contains(line, `code="5`) && !(allow503 && strings.Contains(line, `code="503"`)) {
			t.Errorf("server errors: %s", line)
		}
	}
	if logs := l.logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("a handler panicked:\n%s", excerptLines(logs, "panic"))
	}
}

func excerptLines(s, substr string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			out = append(out, fmt.Sprintf("%.500s", line))
		}
	}
	return strings.Join(out, "")
}
