package ingest

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

// plausibleShopToken accepts the claims the shop's Signer sets for the
// tenant, now, and nothing else.
func TestPlausibleShopToken(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	n := now.Unix()
	good := magento.Claims{Iss: magento.IssuerMagento, Sub: "t1", Aud: magento.AudienceLedger, Iat: n, Nbf: n, Exp: n + 60, Jti: "j"}
	with := func(edit func(*magento.Claims)) magento.Claims { c := good; edit(&c); return c }
	for name, tc := range map[string]struct {
		c    magento.Claims
		want bool
	}{
		"the shop's":           {good, true},
		"within the leeway":    {with(func(c *magento.Claims) { c.Iat, c.Nbf = n+20, n+20; c.Exp = n + 80 }), true},
		"another tenant":       {with(func(c *magento.Claims) { c.Sub = "t2" }), false},
		"another issuer":       {with(func(c *magento.Claims) { c.Iss = "byte8-ledger" }), false},
		"another audience":     {with(func(c *magento.Claims) { c.Aud = "magento" }), false},
		"no jti":               {with(func(c *magento.Claims) { c.Jti = "" }), false},
		"expired":              {with(func(c *magento.Claims) { c.Iat, c.Nbf, c.Exp = n-600, n-600, n-540 }), false},
		"not yet valid":        {with(func(c *magento.Claims) { c.Nbf = n + 120 }), false},
		"too long":             {with(func(c *magento.Claims) { c.Exp = n + 301 }), false},
		"absurd times":         {with(func(c *magento.Claims) { c.Iat, c.Nbf, c.Exp = math.MinInt64+1, math.MinInt64+1, math.MaxInt64 }), false},
		"exp before iat":       {with(func(c *magento.Claims) { c.Exp = n - 1 }), false},
		"issued in the future": {with(func(c *magento.Claims) { c.Iat = n + 120; c.Exp = n + 180 }), false},
	} {
		if got := plausibleShopToken(&magento.Token{Claims: tc.c}, "t1", now); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestConfigShopHealth(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.AuthDriftThreshold != 5 || c.AuthDriftWindow != 10*time.Minute || c.ShopSilentAfter != 6*time.Hour || c.ActivityFlushEvery != 10*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	for _, tc := range []struct{ name, value string }{
		{"INGEST_AUTH_DRIFT_THRESHOLD", "-1"},
		{"INGEST_AUTH_DRIFT_THRESHOLD", "1001"},
		{"INGEST_AUTH_DRIFT_WINDOW", "500ms"},
		{"LEDGER_SHOP_SILENT_AFTER", "0.5s"},
		{"LEDGER_SHOP_SILENT_AFTER", "soon"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("want an error naming %s, got %v", tc.name, err)
			}
		})
	}
	t.Setenv("INGEST_AUTH_DRIFT_THRESHOLD", "3")
	t.Setenv("INGEST_AUTH_DRIFT_WINDOW", "1m")
	t.Setenv("LEDGER_SHOP_SILENT_AFTER", "2h")
	c, err := ConfigFromEnv()
	if err != nil || c.AuthDriftThreshold != 3 || c.AuthDriftWindow != time.Minute || c.ShopSilentAfter != 2*time.Hour {
		t.Fatalf("%+v %v", c, err)
	}
}
