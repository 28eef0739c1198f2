// Package sage is Ledger's Sage Business Cloud Accounting v3.1 client: OAuth 2.0
// authorization-code tokens (golang.org/x/oauth2; refresh tokens rotate and are
// single use), the API client that sends X-Business on every call, and Sage's
// error envelope (an array of $severity/$dataCode/$message/$source objects).
package sage
