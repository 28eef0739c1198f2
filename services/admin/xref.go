package admin

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// xrefKinds are the entity_xref kinds an operator may set.
var xrefKinds = []string{"contact", "invoice", "credit_note", "payment", "product", "service"}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// SetXref links a Magento identity to an existing Sage document: the relink an
// operator does after re-creating a soft-deleted Sage contact by hand (the
// seed's "update the chassis's entity_xref"). The next sync of the entity uses
// the linked document instead of creating one. It answers the id the key
// pointed to before.
func (s *Service) SetXref(ctx context.Context, req *ledgerv1.SetXrefRequest) (*ledgerv1.SetXrefResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	x := store.Xref{
		TenantID: t.ID, Kind: strings.TrimSpace(req.GetKind()), MagentoKey: strings.TrimSpace(req.GetMagentoKey()),
		Currency: strings.ToUpper(strings.TrimSpace(req.GetCurrency())), SageID: strings.TrimSpace(req.GetSageId()),
		Reference: strings.TrimSpace(req.GetReference()),
	}
	switch {
	case !slices.Contains(xrefKinds, x.Kind):
		return nil, status.Errorf(codes.InvalidArgument, "kind %q: use one of %s", x.Kind, strings.Join(xrefKinds, ", "))
	case x.MagentoKey == "":
		return nil, status.Error(codes.InvalidArgument, `magento_key is required: the Magento identity, e.g. the contact reference "M42" or an invoice id`)
	case x.Currency != "" && !currencyPattern.MatchString(x.Currency):
		return nil, status.Errorf(codes.InvalidArgument, "currency %q: use an ISO 4217 code such as GBP, or leave it empty", x.Currency)
	case x.SageID == "":
		return nil, status.Error(codes.InvalidArgument, "sage_id is required: the id of the Sage document (its URL in Sage ends with it)")
	case len(x.SageID) > 64 || strings.ContainsAny(x.SageID, " /?#"):
		return nil, status.Errorf(codes.InvalidArgument, "sage_id %q does not look like a Sage id (up to 64 characters, no spaces or slashes)", x.SageID)
	}
	prev, err := s.st.Xref(ctx, t.ID, x.Kind, x.MagentoKey, x.Currency)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, s.storeErr(ctx, "read xref", err)
	}
	if err := s.st.PutXref(ctx, x); err != nil {
		return nil, s.storeErr(ctx, "store xref", err)
	}
	s.log.InfoContext(ctx, "xref set", "tenant_id", t.ID, "kind", x.Kind, "magento_key", x.MagentoKey,
		"currency", x.Currency, "sage_id", x.SageID, "previous_sage_id", prev.SageID)
	return &ledgerv1.SetXrefResponse{PreviousSageId: prev.SageID}, nil
}
