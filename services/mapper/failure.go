package mapper

import "fmt"

// Error classes the mapper uses: the same names as the writer's, so a failed
// run's class means one thing whichever stage failed it.
const (
	ClassAuth       = "auth"
	ClassNotFound   = "not_found"
	ClassValidation = "validation"
	ClassHTTP       = "http"
	ClassDatabase   = "database"
	ClassSerde      = "serde"
	ClassInternal   = "internal"
)

// Stable error codes and skip reasons the mapper records on runs.
const (
	CodeEntityNotFound     = "magento_entity_not_found"
	CodeResponseInvalid    = "magento_response_invalid"
	CodeRequestRejected    = "magento_request_rejected"
	CodeTokenRevoked       = "magento_token_revoked"
	CodeBindingInactive    = "magento_binding_inactive"
	CodeMagentoUnavailable = "magento_unavailable"
	CodeTotalsMismatch     = "totals_mismatch"
	CodeRefCacheStale      = "ref_cache_stale"
	CodePolicyInvalid      = "policy_invalid"
	CodeNoLines            = "invoice_has_no_lines"
	CodeReferenceTooLong   = "invoice_reference_too_long"
	CodeTenantNotFound     = "tenant_not_found"
	CodeRunNotFound        = "run_not_found"
	CodeOutboxEventInvalid = "outbox_event_invalid"
	CodeStoreUnavailable   = "store_unavailable"
	CodePublishFailed      = "publish_failed"
	CodeReferenceCollision = "contact_reference_collision"
	CodeEntityIDInvalid    = "magento_entity_id_invalid"

	SkipEventNotSupported       = "event_not_supported"
	SkipPaymentMethodNotMapped  = "payment_method_not_mapped"
	SkipOutsideSyncSince        = "outside_sync_since"
	SkipZeroValueInvoice        = "zero_value_invoice"
	SkipUnpaidInvoiceFiltered   = "unpaid_invoice_filtered"
	SkipWebsiteFiltered         = "website_filtered"
	SkipStoreFiltered           = "store_filtered"
	SkipProductTypeNotSupported = "product_type_not_supported"
	SkipSyncFilterExcluded      = "sync_filter_excluded"
)

// SkipReasons lists every skip reason the mapper produces.
var SkipReasons = []string{
	SkipEventNotSupported, SkipPaymentMethodNotMapped, SkipOutsideSyncSince, SkipZeroValueInvoice,
	SkipUnpaidInvoiceFiltered, SkipWebsiteFiltered, SkipStoreFiltered, SkipProductTypeNotSupported,
	SkipSyncFilterExcluded,
}

// Failure is a permanent failure of a run: it is recorded as failed with Class
// and Code, published as a result, and its message dead-lettered for replay
// once the cause is fixed.
type Failure struct {
	Class      string
	Code       string
	Message    string
	HTTPStatus int
}

func (f *Failure) Error() string { return fmt.Sprintf("%s/%s: %s", f.Class, f.Code, f.Message) }

func failf(class, code, format string, args ...any) *Failure {
	return &Failure{Class: class, Code: code, Message: fmt.Sprintf(format, args...)}
}
