package admin

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var (
	// filterWord is an entity type, error class, error code or skip reason.
	filterWord = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	// filterEvent is an event name such as invoice.created.
	filterEvent = regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){1,3}$`)
	// filterIncrement is a Magento increment id (a document number).
	filterIncrement = regexp.MustCompile(`^[A-Za-z0-9_-]{1,50}$`)
)

// parseRunFilter validates a RunFilter; each error names the field and the
// fix. A nil filter matches every run.
func parseRunFilter(f *ledgerv1.RunFilter) (store.RunFilter, error) {
	out := store.RunFilter{
		TenantID: strings.TrimSpace(f.GetTenantId()), Status: strings.TrimSpace(f.GetStatus()),
		EntityType: strings.TrimSpace(f.GetEntityType()), Event: strings.TrimSpace(f.GetEvent()),
		ErrorClass: strings.TrimSpace(f.GetErrorClass()), ErrorCode: strings.TrimSpace(f.GetErrorCode()),
		SkipReason: strings.TrimSpace(f.GetSkipReason()), MagentoEntityID: f.GetMagentoEntityId(),
		IncrementID: strings.TrimSpace(f.GetIncrementId()),
	}
	if out.TenantID != "" {
		if err := store.ValidTenantID(out.TenantID); err != nil {
			return out, status.Errorf(codes.InvalidArgument, "tenant_id: %v", err)
		}
	}
	if out.Status != "" && !slices.Contains(runStatuses, out.Status) {
		return out, status.Errorf(codes.InvalidArgument, "status %q: use one of %s", out.Status, strings.Join(runStatuses, ", "))
	}
	for _, w := range []struct{ field, v, example string }{
		{"entity_type", out.EntityType, "invoice"}, {"error_class", out.ErrorClass, "validation"},
		{"error_code", out.ErrorCode, "record_invalid"}, {"skip_reason", out.SkipReason, "zero_value_invoice"},
	} {
		if w.v != "" && !filterWord.MatchString(w.v) {
			return out, status.Errorf(codes.InvalidArgument, "%s %q: use lowercase letters, digits and _ (at most 64), e.g. %s", w.field, w.v, w.example)
		}
	}
	if out.Event != "" && !filterEvent.MatchString(out.Event) {
		return out, status.Errorf(codes.InvalidArgument, "event %q: use an event name such as invoice.created", out.Event)
	}
	if out.MagentoEntityID < 0 {
		return out, status.Errorf(codes.InvalidArgument, "magento_entity_id %d: use Magento's entity_id, a positive number", out.MagentoEntityID)
	}
	if out.IncrementID != "" && !filterIncrement.MatchString(out.IncrementID) {
		return out, status.Errorf(codes.InvalidArgument, "increment_id %q: use the document number as Magento shows it, e.g. 000000042", out.IncrementID)
	}
	if f.GetSince() != nil {
		if err := f.GetSince().CheckValid(); err != nil {
			return out, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		out.Since = f.GetSince().AsTime()
	}
	if f.GetUntil() != nil {
		if err := f.GetUntil().CheckValid(); err != nil {
			return out, status.Errorf(codes.InvalidArgument, "until: %v", err)
		}
		out.Until = f.GetUntil().AsTime()
	}
	if !out.Since.IsZero() && !out.Until.IsZero() && !out.Until.After(out.Since) {
		return out, status.Error(codes.InvalidArgument, "until is not after since: give a time range that ends after it starts")
	}
	return out, nil
}

// A page token is the cursor of a page's last run: "<unix nanos>.<run id>",
// base64url encoded so callers treat it as opaque.
func pageToken(c store.RunCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + "." + c.ID))
}

func parsePageToken(tok string) (*store.RunCursor, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, nil
	}
	bad := status.Errorf(codes.InvalidArgument, "page_token %q is not a token this service gave: pass next_page_token of the previous page unchanged, or omit it for the first page", tok)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, bad
	}
	nanos, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil {
		return nil, bad
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, bad
	}
	return &store.RunCursor{CreatedAt: time.Unix(0, n).UTC(), ID: u.String()}, nil
}

// runLimit checks a page size: 0 is def, else 1–1000.
func runLimit(n int32, def int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || n > 1000:
		return 0, status.Errorf(codes.InvalidArgument, "limit %d: use 1–1000 (default %d)", n, def)
	}
	return int(n), nil
}

// describeRunFilter renders a filter for logs and messages.
func describeRunFilter(f store.RunFilter) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("tenant", f.TenantID)
	add("status", f.Status)
	add("entity", f.EntityType)
	add("event", f.Event)
	add("class", f.ErrorClass)
	add("code", f.ErrorCode)
	add("skip", f.SkipReason)
	if f.MagentoEntityID != 0 {
		add("magento_id", strconv.FormatInt(f.MagentoEntityID, 10))
	}
	add("increment_id", f.IncrementID)
	if !f.Since.IsZero() {
		add("since", f.Since.Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		add("until", f.Until.Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "every run"
	}
	return fmt.Sprint(strings.Join(parts, " "))
}
