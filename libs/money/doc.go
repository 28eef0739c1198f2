// Package money is Ledger's decimal amount type. Every monetary value that crosses
// Ledger (Magento canonical documents, Sage payloads, reconciliation) is an Amount:
// an exact decimal that decodes from JSON numbers and numeric strings alike (Magento
// sends numbers, Sage answers strings) and never passes through float64.
package money
