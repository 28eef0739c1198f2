package shophealth

import (
	"fmt"
	"time"
)

// Verdicts.
const (
	OK        = "ok"
	Silent    = "silent"
	AuthDrift = "auth_drift"
	NotPaired = "not_paired"
	NeverSent = "never_sent"
)

// DefaultSilentAfter is how long a shop that used to send may send nothing
// before it is called silent: the alert LedgerShopSilent's 6 h. A shop whose
// outbox is quiet for longer on a normal night needs a longer setting.
const DefaultSilentAfter = 6 * time.Hour

// Facts is what Judge decides from.
type Facts struct {
	// MagentoStatus is the binding's magento_connection_status: pending,
	// active, token_revoked or revoked.
	MagentoStatus string
	// Paired is true while Ledger holds the shop's api key.
	Paired bool
	// LastWebhookAt is the last delivery accepted from the shop; zero when
	// none ever was.
	LastWebhookAt time.Time
	// UnauthorizedRecent counts the deliveries refused as unauthorized within
	// the drift window since the last accepted one; LastUnauthorizedAt is the
	// newest refusal (zero: none).
	UnauthorizedRecent int
	LastUnauthorizedAt time.Time
	// Now is the time to judge at.
	Now time.Time
}

// Health is a verdict and one sentence saying what it means and what to do.
type Health struct {
	Verdict string
	Message string
}

// Judge returns f's verdict; silentAfter ≤ 0 means DefaultSilentAfter.
func Judge(f Facts, silentAfter time.Duration) Health {
	if silentAfter <= 0 {
		silentAfter = DefaultSilentAfter
	}
	switch {
	case f.MagentoStatus == "token_revoked":
		return Health{AuthDrift, "Auth drift: the shop and Ledger no longer share the api key (its webhooks fail their signature, or it refuses Ledger's calls); " +
			"re-pair: disconnect, generate a fresh pairing code in the shop and connect again (docs/runbooks.md#auth-drift-and-re-pair)" + refusals(f)}
	case f.MagentoStatus != "active" || !f.Paired:
		return Health{NotPaired, "The shop is not paired (status " + quoteStatus(f.MagentoStatus) + "): connect it with a pairing code from the shop (docs/pairing.md)"}
	case f.LastWebhookAt.IsZero():
		return Health{NeverSent, "Paired, but Ledger has not received anything from the shop yet: its outbox is delivered by Magento's cron " +
			"(bin/magento cron:run --group=default, every minute), or by the relay (docs/relay.md)" + refusals(f)}
	case f.Now.Sub(f.LastWebhookAt) > silentAfter:
		return Health{Silent, fmt.Sprintf("Shop silent: nothing received for %s (last at %s, silent after %s); the shop's cron has probably stopped: "+
			"bin/magento cron:run --group=default must run every minute from the system crontab, or use the relay (docs/relay.md); "+
			"pending outbox rows are delivered when it runs again (docs/runbooks.md#shop-cron-not-running)",
			roundAge(f.Now.Sub(f.LastWebhookAt)), f.LastWebhookAt.UTC().Format(time.RFC3339), silentAfter) + refusals(f)}
	}
	return Health{OK, "Receiving: last delivery at " + f.LastWebhookAt.UTC().Format(time.RFC3339) + refusals(f)}
}

// refusals mentions recent unauthorized refusals, which do not change the
// verdict on their own.
func refusals(f Facts) string {
	if f.UnauthorizedRecent == 0 {
		return ""
	}
	return fmt.Sprintf("; %d deliveries refused as unauthorized recently (last at %s): if they keep coming the api keys have drifted (docs/runbooks.md#auth-drift-and-re-pair)",
		f.UnauthorizedRecent, f.LastUnauthorizedAt.UTC().Format(time.RFC3339))
}

func quoteStatus(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// roundAge prints an age to the second below a minute, else to the minute.
func roundAge(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}
