package magentosim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

// DefaultBaseURL is byte8/client/base_url before the first pairing (the module's
// etc/config.xml default). Disconnect keeps whatever pairing stored (wire §0).
const DefaultBaseURL = "https://ledger.byte8.io"

// DefaultDrainInterval is the real cron schedule of byte8_outbox_drain (* * * * *).
const DefaultDrainInterval = time.Minute

// DefaultBackoff is OutboxDrain::BACKOFF_SECONDS (wire §1.4).
var DefaultBackoff = []time.Duration{
	60 * time.Second, 300 * time.Second, 1800 * time.Second, 7200 * time.Second,
	21600 * time.Second, 43200 * time.Second, 86400 * time.Second,
}

// Constants of the real modules that the simulator reproduces.
const (
	// BatchSize is OutboxDrain::BATCH_SIZE.
	BatchSize = 50
	// MaxTransientAttempts is OutboxDrain::MAX_TRANSIENT_ATTEMPTS: the 10th
	// transient failure dead-letters the row.
	MaxTransientAttempts = 10
	// PairingCodeTTL is SageConfigInterface::PAIRING_CODE_TTL_SECONDS.
	PairingCodeTTL = 1800 * time.Second
	// ProviderSage is the provider key the Sage observers mirror under.
	ProviderSage = magento.ProviderSage
)

// ErrNotConnected is ByteClient's NotConnectedException: tenant_id or base_url is
// not configured, so nothing can be enqueued or sent.
var ErrNotConnected = errors.New("magentosim: Byte8 client is not connected (tenant_id or base_url not configured)")

// ErrNotFound is returned for an unknown entity id.
var ErrNotFound = errors.New("magentosim: entity not found")

// Config configures a simulated shop. The zero value is usable: real clock, real
// cron interval and backoff ladder, an HTTP client with the module's timeouts.
type Config struct {
	// Now is the shop's clock (used for tokens, outbox timestamps, pairing TTL
	// and JWT checks). Defaults to time.Now.
	Now func() time.Time
	// DrainInterval is how often Run drains the outbox. Defaults to 60 s.
	DrainInterval time.Duration
	// Backoff is the transient retry ladder, indexed min(n, len)-1 after the n-th
	// failure. Defaults to DefaultBackoff; tests and the dev stack shorten it.
	Backoff []time.Duration
	// HTTPClient sends webhooks and the disconnect call. Its CheckRedirect is
	// always overridden so redirects are never followed, as with curl. Defaults to
	// a client with a 5 s connect and 15 s total timeout.
	HTTPClient *http.Client
	// Logger receives the module's log lines. Defaults to a discarding logger.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DrainInterval <= 0 {
		c.DrainInterval = DefaultDrainInterval
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	c.Backoff = append([]time.Duration(nil), c.Backoff...)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
		hc = http.Client{Transport: tr, Timeout: 15 * time.Second}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.HTTPClient = &hc
	return c
}

// Shop is an in-memory Magento store running Byte8_Client and
// Byte8_SageAccounting. All methods are safe for concurrent use.
type Shop struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// core_config_data
	tenantID, apiKey, baseURL string
	pairingHash               string
	pairingIssuedAt           int64 // unix seconds; 0 = not set
	down                      bool

	customers   map[int64]*magento.Contact
	products    map[int64]*Product
	invoices    map[int64]*invoiceRecord
	creditMemos map[int64]*CreditMemo

	nextCustomerID, nextProductID, nextInvoiceID, nextOrderID, nextCreditMemoID int64

	outbox       []*OutboxRow // ordered by EntityID
	outboxByKey  map[string]*OutboxRow
	nextOutboxID int64

	syncState     map[syncKey]*SyncStateRow
	nextSyncRowID int64

	jtiSeen    map[string]time.Time // sha1(jti) → expiry
	jtiSweptAt time.Time            // last sweep of expired jtiSeen entries

	drainMu sync.Mutex // serialises DrainOnce
}

// New returns an empty, unpaired shop.
func New(cfg Config) *Shop {
	cfg = cfg.withDefaults()
	return &Shop{
		cfg:         cfg,
		log:         cfg.Logger,
		baseURL:     DefaultBaseURL,
		customers:   map[int64]*magento.Contact{},
		products:    map[int64]*Product{},
		invoices:    map[int64]*invoiceRecord{},
		creditMemos: map[int64]*CreditMemo{},
		outboxByKey: map[string]*OutboxRow{},
		syncState:   map[syncKey]*SyncStateRow{},
		jtiSeen:     map[string]time.Time{},
	}
}

// now is the shop clock truncated to whole seconds in UTC, the resolution of the
// MySQL timestamp columns.
func (s *Shop) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// Connected reports whether both tenant_id and api_key are set (isConnected()).
func (s *Shop) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectedLocked()
}

func (s *Shop) connectedLocked() bool { return s.tenantID != "" && s.apiKey != "" }

// TenantID returns byte8/client/tenant_id, "" when unpaired.
func (s *Shop) TenantID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenantID
}

// BaseURL returns byte8/client/base_url (Ledger's origin), without trailing slash.
func (s *Shop) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// SetDown makes the shop unreachable: every /rest request answers 503 and the
// drain cron pauses. SetDown(false) brings it back.
func (s *Shop) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Down reports whether SetDown(true) is in effect.
func (s *Shop) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// Run drains the outbox every DrainInterval until ctx is done, like the
// byte8_outbox_drain cron. It returns nil when ctx is cancelled.
func (s *Shop) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.DrainInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.DrainOnce(ctx)
		}
	}
}
