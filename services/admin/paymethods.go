package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
)

// checkPaymentMethods checks the Magento method codes the policy maps
// (payment_method_map, sage_payment_method_map) against the shop's own list,
// GET /V1/byte8/payment-methods (every installed method, inactive ones
// included): a code the shop does not have is InvalidArgument naming the
// field, the code and the codes the shop has, so a typo is a form error
// instead of payment_method_not_mapped dead letters. Nothing is checked while
// the shop is not connected, or when its module predates the endpoint (404);
// a shop that cannot be reached is Unavailable (try again), since an
// unchecked mapping is what this check is for.
func (s *Service) checkPaymentMethods(ctx context.Context, t store.Tenant, p policy.Policy) error {
	if len(p.PaymentMethodMap) == 0 && len(p.SagePaymentMethodMap) == 0 {
		return nil
	}
	if t.Binding.MagentoConnectionStatus != store.StatusActive || t.Binding.APIKey == "" {
		return nil
	}
	shop := magento.Client{BaseURL: t.Binding.MagentoBaseURL, TenantID: t.ID, APIKey: t.Binding.APIKey, HTTP: s.hc}
	var methods []magento.PaymentMethod
	err := shop.Get(ctx, "/V1/byte8/payment-methods", &methods)
	switch {
	case magento.IsStatus(err, http.StatusNotFound):
		s.log.InfoContext(ctx, "the shop has no payment-methods endpoint (module too old); payment method codes not checked", "tenant_id", t.ID)
		return nil
	case err != nil:
		return status.Errorf(codes.Unavailable, "the policy maps payment methods, and the shop's list of them (GET %s/rest/V1/byte8/payment-methods) "+
			"could not be read to check the codes: %v; try again when the shop answers", t.Binding.MagentoBaseURL, err)
	}
	return unknownPaymentMethods(p, methods)
}

// unknownPaymentMethods is the check itself: every mapped code the shop does
// not list, joined, each naming its field.
func unknownPaymentMethods(p policy.Policy, methods []magento.PaymentMethod) error {
	shopCodes := make([]string, 0, len(methods))
	for _, m := range methods {
		shopCodes = append(shopCodes, m.Code)
	}
	slices.Sort(shopCodes)
	has := strings.Join(shopCodes, ", ")
	if has == "" {
		has = "none"
	}
	var errs []error
	for _, field := range []struct {
		name string
		m    map[string]string
	}{{"payment_method_map", p.PaymentMethodMap}, {"sage_payment_method_map", p.SagePaymentMethodMap}} {
		keys := make([]string, 0, len(field.m))
		for k := range field.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if _, ok := slices.BinarySearch(shopCodes, k); !ok {
				errs = append(errs, fmt.Errorf("%s[%q]: %q is not a payment method of the shop (it has: %s): use its Magento method code",
					field.name, k, k, has))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "invalid policy: %v", errors.Join(errs...))
}
