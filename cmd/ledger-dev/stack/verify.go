package stack

import (
	"context"
	"fmt"
	"time"

	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// Expected is the terminal state one Magento entity must reach.
type Expected struct {
	EntityType string // invoice | customer | creditmemo | product
	MagentoID  int64
	Status     string // synced | skipped | failed
}

// ExpectSeed lists what a seeded shop must end with: every invoice and every
// registered customer synced.
func ExpectSeed(r magentosim.SeedResult) []Expected {
	var out []Expected
	for _, id := range r.InvoiceIDs {
		out = append(out, Expected{"invoice", id, "synced"})
	}
	for _, id := range r.CustomerIDs {
		out = append(out, Expected{"customer", id, "synced"})
	}
	return out
}

// Summary is the verdict on a run, read from the two ends only: Magento's
// sync-state mirror and outbox, and the documents in Sage.
type Summary struct {
	Synced, Skipped, Failed int
	// Duplicates counts Sage documents beyond the first with the same reference.
	Duplicates int
	// Lost counts expected entities with no terminal sync state and outbox rows
	// that Magento dead-lettered.
	Lost int
	// Mismatched counts entities that ended in another state than expected.
	Mismatched int
	// Pending counts outbox rows Magento has not delivered yet.
	Pending int
}

// String is the one-line demo summary.
func (s Summary) String() string {
	return fmt.Sprintf("demo: synced=%d skipped=%d failed=%d duplicates=%d lost=%d", s.Synced, s.Skipped, s.Failed, s.Duplicates, s.Lost)
}

// OK reports whether every entity reached its expected state, with nothing lost
// and no duplicate in Sage.
func (s Summary) OK() bool {
	return s.Duplicates == 0 && s.Lost == 0 && s.Mismatched == 0 && s.Pending == 0
}

// Check reads both ends now.
func (s *Stack) Check(expected []Expected) Summary {
	var sum Summary
	for _, e := range expected {
		row, ok := s.Shop.SyncState(e.EntityType, e.MagentoID)
		if !ok || row.SyncStatus == "pending" {
			sum.Lost++
			continue
		}
		switch row.SyncStatus {
		case "synced":
			sum.Synced++
		case "skipped":
			sum.Skipped++
		case "failed":
			sum.Failed++
		}
		if row.SyncStatus != e.Status {
			sum.Mismatched++
		}
	}
	c := s.Shop.OutboxCounts()
	sum.Lost += c.DeadLettered
	sum.Pending = c.Pending
	sum.Duplicates = s.SageDuplicates()
	return sum
}

// SageDuplicates counts Sage documents that repeat another's reference in the
// lead business (contacts and sales invoices).
func (s *Stack) SageDuplicates() int { return s.sageDuplicates(s.Sage.LeadBusinessID()) }

// sageDuplicates is SageDuplicates in the business biz.
func (s *Stack) sageDuplicates(biz string) int {
	dups := 0
	seen := map[string]bool{}
	for _, c := range s.Sage.Contacts(biz) {
		if seen["c:"+c.Reference] {
			dups++
		}
		seen["c:"+c.Reference] = true
	}
	for _, inv := range s.Sage.Invoices(biz) {
		if seen["i:"+inv.Reference] {
			dups++
		}
		seen["i:"+inv.Reference] = true
	}
	return dups
}

// WaitSettled polls until the outbox is drained and every expected entity has a
// terminal state, or ctx ends; it returns the last summary either way.
func (s *Stack) WaitSettled(ctx context.Context, expected []Expected) Summary {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		sum := s.Check(expected)
		settled := sum.Pending == 0 && sum.Synced+sum.Skipped+sum.Failed == len(expected)
		if settled {
			return sum
		}
		select {
		case <-ctx.Done():
			return sum
		case <-tick.C:
		}
	}
}
