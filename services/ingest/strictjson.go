package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// checkStructure refuses a decoded body whose meaning depends on the parser:
// a key twice in one object (PHP and Go keep the last value, other parsers
// the first, so which one counts would be a guess). It names the top-level
// field the duplicate is in.
func checkStructure(body []byte) error {
	if top, key, nested, dup := duplicateKey(body); dup {
		if nested {
			return &EnvelopeError{excerpt(top), fmt.Sprintf("has the key %q more than once in one object; send each key once", excerpt(key))}
		}
		return &EnvelopeError{excerpt(top), "appears more than once in the body; send each key once"}
	}
	return nil
}

// excerpt cuts a caller's string (a key name) for an error message.
func excerpt(s string) string { return describe(json.RawMessage(s)) }

// maxNesting is how deep a webhook body may nest objects and arrays, the
// body's own object included. The shop's envelope is two levels deep
// ({"payload":{"increment_id":…}}); the limit leaves room for newer modules
// while keeping Postgres's jsonb parser and every later decoder of the stored
// payload far from their own limits.
const maxNesting = 64

// tooDeep reports whether body nests objects and arrays more than limit
// levels deep. It only counts brackets outside strings, so it is safe on any
// input, JSON or not, and stops at the first level past the limit.
func tooDeep(body []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// duplicateKey finds the first object key that appears twice in one object
// anywhere in body (compared after unescaping, so "a" and "\u0061" are the
// same key). top is the body's top-level key the duplicate was found in or
// under, nested whether the duplicate is inside it rather than top itself. Which of two values counts differs between parsers (PHP and Go keep
// the last, others the first), so a body with one is refused rather than
// guessed at. body must be valid JSON.
func duplicateKey(body []byte) (top, key string, nested, found bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []jsonFrame
	// valueDone marks that a value of the innermost object has been read: its
	// next token is a key or the closing brace.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false, false
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].expectKey {
			k, ok := tok.(string)
			if !ok { // the object's closing brace
				stack = stack[:n-1]
				valueDone()
				continue
			}
			if n == 1 {
				top = k
			}
			if _, dup := stack[n-1].keys[k]; dup {
				return top, k, n > 1, true
			}
			stack[n-1].keys[k] = struct{}{}
			stack[n-1].expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{keys: map[string]struct{}{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, jsonFrame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonFrame is one open object (keys seen so far; expectKey when the next
// token is a key) or array (keys nil) of duplicateKey's walk.
type jsonFrame struct {
	keys      map[string]struct{}
	expectKey bool
}
