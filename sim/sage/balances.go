package sagesim

import "github.com/ledgersync/ledger/libs/money"

// Outstanding returns what is left to pay on every posted artefact of a
// business, by id: sales invoices (owed by the customer), sales credit notes and
// payments on account (owed to the customer). Void documents show 0; drafts and
// deleted payments are left out. An unknown business gives nil.
func (s *Server) Outstanding(businessID string) map[string]money.Amount {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make(map[string]money.Amount, len(b.invoices)+len(b.creditNotes)+len(b.onAccount))
	for id, inv := range b.invoices {
		if inv.Status.ID != "DRAFT" {
			out[id] = inv.OutstandingAmount
		}
	}
	for id, cn := range b.creditNotes {
		if cn.Status.ID != "DRAFT" {
			out[id] = cn.OutstandingAmount
		}
	}
	for id, poa := range b.onAccount {
		out[id] = poa.OutstandingAmount
	}
	return out
}

// Balances returns each contact's balance by contact id: outstanding invoices
// minus outstanding credit notes and payments on account, in the documents'
// currency [I]. It is the contact's balance field. An unknown business gives
// nil.
func (s *Server) Balances(businessID string) map[string]money.Amount {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make(map[string]money.Amount, len(b.contacts))
	for id, c := range b.contacts {
		out[id] = c.Balance
	}
	return out
}
