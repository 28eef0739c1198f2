package main

import (
	"strings"
	"time"

	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// runFilterFlags are the flags of a RunFilter, shared by runs list and runs
// retry (and named like the dashboard's runs page filters).
type runFilterFlags struct {
	tenant, status, entity, event, class, code, skip, increment, since, until *string
	magentoID                                                                 *int64
}

// runFilterFlagNames are the flags registerRunFilterFlags defines.
var runFilterFlagNames = []string{"tenant", "status", "entity", "event", "class", "code", "skip-reason",
	"magento-id", "increment-id", "since", "until"}

func registerRunFilterFlags(fs *pflag.FlagSet) runFilterFlags {
	return runFilterFlags{
		tenant:    fs.String("tenant", "", "only this tenant's runs"),
		status:    fs.String("status", "", "only runs in this status: pending, running, succeeded, skipped or failed"),
		entity:    fs.String("entity", "", "only this entity type: invoice, creditmemo, payment, customer or product"),
		event:     fs.String("event", "", "only this event, e.g. invoice.created"),
		class:     fs.String("class", "", "only this error class, e.g. validation"),
		code:      fs.String("code", "", "only this error code, e.g. payment_method_not_mapped"),
		skip:      fs.String("skip-reason", "", "only runs skipped for this reason, e.g. zero_value_invoice"),
		magentoID: fs.Int64("magento-id", 0, "only this Magento entity_id"),
		increment: fs.String("increment-id", "", "only this Magento increment id (the document number, e.g. 000000042)"),
		since:     fs.String("since", "", "only runs created at or after this time (a date, an RFC 3339 time or an age such as 24h)"),
		until:     fs.String("until", "", "only runs created before this time"),
	}
}

// set names the filter flags the command line gave.
func (f runFilterFlags) set(fs *pflag.FlagSet) []string {
	var out []string
	for _, n := range runFilterFlagNames {
		if fs.Changed(n) {
			out = append(out, "--"+n)
		}
	}
	return out
}

// filter checks the flags and builds the RunFilter; errors name the flag.
func (f runFilterFlags) filter(cmd string) (*ledgerv1.RunFilter, error) {
	st := strings.TrimSpace(*f.status)
	if st != "" && !runStatuses[st] {
		return nil, usagef("%s: --status %q: use pending, running, succeeded, skipped or failed", cmd, st)
	}
	if *f.magentoID < 0 {
		return nil, usagef("%s: --magento-id %d: use Magento's entity_id, a positive number", cmd, *f.magentoID)
	}
	now := time.Now()
	since, err := parseWhen("since", *f.since, now)
	if err != nil {
		return nil, err
	}
	until, err := parseWhen("until", *f.until, now)
	if err != nil {
		return nil, err
	}
	if since != nil && until != nil && !until.AsTime().After(since.AsTime()) {
		return nil, usagef("%s: --until %s is not after --since %s: give a range that ends after it starts", cmd, ts(until), ts(since))
	}
	return &ledgerv1.RunFilter{
		TenantId: strings.TrimSpace(*f.tenant), Status: st, EntityType: strings.TrimSpace(*f.entity),
		Event: strings.TrimSpace(*f.event), ErrorClass: strings.TrimSpace(*f.class), ErrorCode: strings.TrimSpace(*f.code),
		SkipReason: strings.TrimSpace(*f.skip), MagentoEntityId: *f.magentoID, IncrementId: strings.TrimSpace(*f.increment),
		Since: since, Until: until,
	}, nil
}
