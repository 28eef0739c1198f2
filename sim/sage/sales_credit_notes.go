package sagesim

// SalesCreditNote is a Sage sales credit note as the API returns it. It has the
// invoice's shape with credit_note_lines, a credit note number and
// original_invoice_date instead of a due date. Its outstanding_amount is what is
// still owed to the customer; refunds and allocations reduce it.
type SalesCreditNote struct {
	SalesArtefact
	CreditNoteNumberPrefix string           `json:"credit_note_number_prefix"`
	CreditNoteNumber       string           `json:"credit_note_number"`
	OriginalInvoiceDate    *string          `json:"original_invoice_date"`
	CreditNoteLines        []CreditNoteLine `json:"credit_note_lines"`
}

type salesCreditNoteInput struct {
	salesArtefactInput
	OriginalInvoiceDate    *string             `json:"original_invoice_date"`
	CreditNoteNumberPrefix *string             `json:"credit_note_number_prefix"`
	CreditNoteLines        *[]invoiceLineInput `json:"credit_note_lines"`
}

func (in *salesCreditNoteInput) parts() salesParts {
	return salesParts{&in.salesArtefactInput, in.OriginalInvoiceDate, in.CreditNoteNumberPrefix, in.CreditNoteLines}
}

// CreditNotes returns a business's sales credit notes in creation order, voided
// ones included. An unknown business gives nil.
func (s *Server) CreditNotes(businessID string) []SalesCreditNote {
	return snapshot(s, businessID, creditNoteKind.kind)
}

// creditNoteKind: a sales credit note is owed to the customer.
var creditNoteKind = &salesKind[*SalesCreditNote, *salesCreditNoteInput]{
	kind: &kind[*SalesCreditNote]{
		root: "sales_credit_note", resource: "sales_credit_notes",
		store:     func(b *business) *store[*SalesCreditNote] { return &b.creditNotes },
		match:     salesMatch[*SalesCreditNote],
		reference: func(cn *SalesCreditNote) string { return cn.Reference },
	},
	noun: "credit note", dateKey: "original_invoice_date", prefixKey: "credit_note_number_prefix", lines: "credit_note_lines",
	prefix:          "SCN-",
	transactionType: Base{ID: "SALES_CREDIT_NOTE", DisplayedAs: "Sales Credit Note", Path: "/transaction_types/SALES_CREDIT_NOTE"},
	newInput:        func() *salesCreditNoteInput { return new(salesCreditNoteInput) },
	number:          func(cn *SalesCreditNote) (string, string) { return cn.CreditNoteNumberPrefix, cn.CreditNoteNumber },
	build: func(a SalesArtefact, p salesParts, _ *Contact, prefix, number string, lines []InvoiceLine) *SalesCreditNote {
		return &SalesCreditNote{SalesArtefact: a, CreditNoteNumberPrefix: prefix, CreditNoteNumber: number,
			OriginalInvoiceDate: p.date, CreditNoteLines: lines}
	},
}
