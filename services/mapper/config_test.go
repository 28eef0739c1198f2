package mapper

import (
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/env"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	r := &env.Reader{Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	c, err := configFrom(r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 4 || c.HTTPTimeout != 15*time.Second || c.BaseCurrency != "GBP" || c.Addr != "127.0.0.1:8083" {
		t.Fatalf("defaults: %+v", c)
	}
	vars = map[string]string{"MAPPER_WORKERS": "0", "MAPPER_HTTP_TIMEOUT": "1ms", "MAPPER_BASE_CURRENCY": "eur"}
	_, err = configFrom(&env.Reader{Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	for _, want := range []string{"MAPPER_WORKERS", "MAPPER_HTTP_TIMEOUT", "MAPPER_BASE_CURRENCY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
