package magentosim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

// GeneratePairingCode is the admin "Generate" button: 32 lowercase hex characters
// from 16 random bytes. Only its SHA-256 and the issue time are stored, so a new
// code invalidates the previous one. It expires after PairingCodeTTL.
func (s *Shop) GeneratePairingCode() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	code := hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(code))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairingHash = hex.EncodeToString(sum[:])
	s.pairingIssuedAt = s.cfg.Now().Unix()
	return code
}

// PairError is a refusal of the pairing endpoint with its HTTP status and the
// module's message (wire §6).
type PairError struct {
	Status  int
	Message string
	reason  string // for logs only: the 401s are deliberately identical
}

// Error returns the status and message.
func (e *PairError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// Pairing messages of Byte8\SageAccounting\Model\Setup\Pair.
const (
	msgPairRequired = "pairing_code, tenant_id, byte8_api_key and ledger_base_url are all required."
	msgPairURL      = "ledger_base_url must be an absolute http(s) URL."
	msgPairInvalid  = "Invalid or expired pairing code."
)

var pairURLPattern = regexp.MustCompile(`^https?://[^/]+`)

// phpTrim is PHP's trim() character set.
func phpTrim(s string) string { return strings.Trim(s, " \t\n\r\x00\x0B") }

// Pair is SetupPairInterface::pair with its exact validation order: trim (and
// strip trailing "/" from the URL), all four present (400), URL shape (400), then
// a pending code (401), its age ≤ 1800 s (401) and its hash (401), all three 401s
// with the same message. Success stores the credentials and base URL and burns the
// code. Refusals are *PairError.
func (s *Shop) Pair(req magento.PairRequest) error {
	code := phpTrim(req.PairingCode)
	tenant := phpTrim(req.TenantID)
	key := phpTrim(req.APIKey)
	base := strings.TrimRight(phpTrim(req.LedgerBaseURL), "/")
	if code == "" || tenant == "" || key == "" || base == "" {
		return &PairError{Status: http.StatusBadRequest, Message: msgPairRequired}
	}
	if !pairURLPattern.MatchString(base) {
		return &PairError{Status: http.StatusBadRequest, Message: msgPairURL}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256([]byte(code))
	switch {
	case s.pairingHash == "" || s.pairingIssuedAt == 0:
		return s.pairRefusedLocked("no pairing code is pending generation")
	case s.cfg.Now().Unix()-s.pairingIssuedAt > int64(PairingCodeTTL.Seconds()):
		return s.pairRefusedLocked("pairing code expired (age exceeds 30min TTL)")
	case subtle.ConstantTimeCompare([]byte(s.pairingHash), []byte(hex.EncodeToString(sum[:]))) != 1:
		return s.pairRefusedLocked("pairing code mismatch")
	}
	s.tenantID, s.apiKey, s.baseURL = tenant, key, base
	s.pairingHash, s.pairingIssuedAt = "", 0
	s.log.Info("Byte8: paired successfully — outbound + inbound keys live", "tenant_id", tenant, "base_url", base)
	return nil
}

func (s *Shop) pairRefusedLocked(reason string) error {
	s.log.Warn("Byte8: /setup/pair rejected", "reason", reason)
	return &PairError{Status: http.StatusUnauthorized, Message: msgPairInvalid, reason: reason}
}

// Disconnect is the admin Disconnect button (wire §2.3): when connected it POSTs
// {} to {base_url}/v1/tenant/disconnect with Idempotency-Key
// "disconnect:"+sha1_hex(tenant) and a token signed with the still-valid key, then
// deletes tenant_id, api_key and the pairing code while keeping base_url. The
// local disconnect always happens; the returned error only reports a failed or
// refused notification (nil on any 2xx).
func (s *Shop) Disconnect(ctx context.Context) error {
	s.mu.Lock()
	connected := s.connectedLocked()
	tenant, key, base := s.tenantID, s.apiKey, s.baseURL
	s.mu.Unlock()

	var notifyErr error
	if connected && base != "" {
		notifyErr = s.notifyDisconnect(ctx, base, tenant, key)
		if notifyErr != nil {
			s.log.Warn("Byte8: disconnect call to ledger failed (continuing anyway)", "err", notifyErr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenantID, s.apiKey = "", ""
	s.pairingHash, s.pairingIssuedAt = "", 0
	return notifyErr
}

func (s *Shop) notifyDisconnect(ctx context.Context, base, tenant, key string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, disconnectTimeout)
		defer cancel()
	}
	target := strings.TrimRight(base, "/") + "/v1/tenant/disconnect"
	tok, err := magento.MintOutbound(key, tenant, s.cfg.Now())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte("{}")))
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(tenant))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "disconnect:"+hex.EncodeToString(sum[:]))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("Network error publishing to Byte8 (%s): %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("Byte8 returned HTTP %d from %s", resp.StatusCode, target)
	}
	return nil
}

// disconnectTimeout bounds Disconnect's call when the caller's context has none.
const disconnectTimeout = 15 * time.Second

// SetAPIKey replaces the stored api key without pairing, as an admin pasting
// another value into byte8/client/api_key (or a pairing with another Ledger)
// does: the shop then signs its webhooks with a key Ledger does not hold and
// refuses Ledger's tokens, which is auth drift. ErrNotConnected when the
// shop is not paired.
func (s *Shop) SetAPIKey(key string) error {
	key = phpTrim(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connectedLocked() {
		return ErrNotConnected
	}
	if key == "" {
		return fmt.Errorf("magentosim: SetAPIKey needs a non-empty key")
	}
	s.apiKey = key
	return nil
}
