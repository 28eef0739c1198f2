package sagesim

import (
	"cmp"
	"time"
)

// SalesInvoice is a Sage sales invoice as the API returns it.
type SalesInvoice struct {
	SalesArtefact
	InvoiceNumberPrefix string        `json:"invoice_number_prefix"`
	InvoiceNumber       string        `json:"invoice_number"`
	DueDate             string        `json:"due_date"`
	InvoiceLines        []InvoiceLine `json:"invoice_lines"`
}

type salesInvoiceInput struct {
	salesArtefactInput
	DueDate             *string             `json:"due_date"`
	InvoiceNumberPrefix *string             `json:"invoice_number_prefix"`
	InvoiceLines        *[]invoiceLineInput `json:"invoice_lines"`
}

func (in *salesInvoiceInput) parts() salesParts {
	return salesParts{&in.salesArtefactInput, in.DueDate, in.InvoiceNumberPrefix, in.InvoiceLines}
}

// Invoices returns a business's sales invoices in creation order, voided ones
// included. An unknown business gives nil.
func (s *Server) Invoices(businessID string) []SalesInvoice {
	return snapshot(s, businessID, invoiceKind.kind)
}

// invoiceKind: a sales invoice is owed by the customer; without due_date it is
// due after the contact's credit days.
var invoiceKind = &salesKind[*SalesInvoice, *salesInvoiceInput]{
	kind: &kind[*SalesInvoice]{
		root: "sales_invoice", resource: "sales_invoices",
		store:     func(b *business) *store[*SalesInvoice] { return &b.invoices },
		match:     salesMatch[*SalesInvoice],
		reference: func(inv *SalesInvoice) string { return inv.Reference },
	},
	noun: "invoice", debit: true, dateKey: "due_date", prefixKey: "invoice_number_prefix", lines: "invoice_lines", prefix: "SI-",
	transactionType: Base{ID: "SALES_INVOICE", DisplayedAs: "Sales Invoice", Path: "/transaction_types/SALES_INVOICE"},
	newInput:        func() *salesInvoiceInput { return new(salesInvoiceInput) },
	number:          func(inv *SalesInvoice) (string, string) { return inv.InvoiceNumberPrefix, inv.InvoiceNumber },
	build: func(a SalesArtefact, p salesParts, c *Contact, prefix, number string, lines []InvoiceLine) *SalesInvoice {
		return &SalesInvoice{SalesArtefact: a, InvoiceNumberPrefix: prefix, InvoiceNumber: number,
			DueDate: cmp.Or(str(p.date), dueDate(a.Date, c)), InvoiceLines: lines}
	},
}

// dueDate is date plus the contact's credit days (30 when unset).
func dueDate(date string, c *Contact) string {
	days := 30
	if c.CreditDays > 0 {
		days = c.CreditDays
	}
	d, _ := time.Parse(time.DateOnly, date)
	return d.AddDate(0, 0, days).Format(time.DateOnly)
}
