package sagesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Service is a service item (reference data for invoice lines).
type Service struct {
	ID                    string        `json:"id"`
	DisplayedAs           string        `json:"displayed_as"`
	Path                  string        `json:"$path"`
	CreatedAt             time.Time     `json:"created_at"`
	UpdatedAt             time.Time     `json:"updated_at"`
	DeletedAt             *time.Time    `json:"deleted_at"`
	Deletable             bool          `json:"deletable"`
	ItemCode              string        `json:"item_code"`
	Description           string        `json:"description"`
	Notes                 string        `json:"notes"`
	SalesLedgerAccount    *Base         `json:"sales_ledger_account"`
	SalesTaxRate          *Base         `json:"sales_tax_rate"`
	PurchaseLedgerAccount *Base         `json:"purchase_ledger_account"`
	PurchaseTaxRate       *Base         `json:"purchase_tax_rate"`
	CostPrice             money.Amount  `json:"cost_price"`
	SalesRates            []ServiceRate `json:"sales_rates"`
	SourceGUID            string        `json:"source_guid"`
	PurchaseDescription   string        `json:"purchase_description"`
	Active                bool          `json:"active"`
}

// ServiceRate is one of a service's selling rates.
type ServiceRate struct {
	ID              string       `json:"id"`
	DisplayedAs     string       `json:"displayed_as"`
	RateName        string       `json:"rate_name"`
	Rate            money.Amount `json:"rate"`
	RateIncludesTax bool         `json:"rate_includes_tax"`
	ServiceRateType Base         `json:"service_rate_type"`
}

type serviceInput struct {
	catalogInput
	SalesRates *[]struct {
		RateName          *string       `json:"rate_name"`
		Rate              *money.Amount `json:"rate"`
		RateIncludesTax   bool          `json:"rate_includes_tax"`
		ServiceRateTypeID *string       `json:"service_rate_type_id"`
	} `json:"sales_rates"`
}

// Services returns a business's services in creation order. An unknown
// business gives nil.
func (s *Server) Services(businessID string) []Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]Service, 0, len(b.serviceOrder))
	for _, id := range b.serviceOrder {
		out = append(out, *b.services[id])
	}
	return out
}

func (s *Server) createService(r *http.Request, call *apiCall) response {
	return s.writeService(r, call, false)
}

func (s *Server) updateService(r *http.Request, call *apiCall) response {
	return s.writeService(r, call, true)
}

// writeService is POST /services and PUT /services/{id}; description and
// sales_ledger_account_id are required.
func (s *Server) writeService(r *http.Request, call *apiCall, update bool) response {
	fields, idem, bad := decodeObject(r, "service")
	if bad != nil {
		return *bad
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "service", idem); ok {
		return resp
	}
	var prev *Service
	var base map[string]json.RawMessage
	if update {
		sv, ok := b.services[r.PathValue("id")]
		if !ok || sv.DeletedAt != nil {
			return notFound()
		}
		prev, base = sv, b.inputs[sv.ID]
	}
	var in serviceInput
	merged, bad := mergeFields("service", base, fields, &in)
	if bad != nil {
		return *bad
	}
	errs, refs := validateCatalogLocked(b, &in.catalogInput, false, func(code string) bool {
		for _, sv := range b.services {
			if (prev == nil || sv.ID != prev.ID) && strings.EqualFold(sv.ItemCode, code) {
				return true
			}
		}
		return false
	})
	if in.SalesRates != nil {
		for _, rt := range *in.SalesRates {
			if rt.Rate == nil {
				errs = append(errs, required("sales_rates.rate"))
			}
		}
	}
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	sv := &Service{CreatedAt: now, Deletable: true, Active: true}
	status := http.StatusCreated
	if prev != nil {
		sv.ID, sv.CreatedAt, sv.Deletable = prev.ID, prev.CreatedAt, prev.Deletable
		status = http.StatusOK
	} else {
		sv.ID = s.newID()
		b.serviceOrder = append(b.serviceOrder, sv.ID)
	}
	sv.Path, sv.UpdatedAt = "/services/"+sv.ID, now
	sv.ItemCode, sv.Description = strings.TrimSpace(str(in.ItemCode)), strings.TrimSpace(str(in.Description))
	sv.DisplayedAs = catalogDisplay(sv.ItemCode, sv.Description)
	sv.Notes, sv.SourceGUID, sv.PurchaseDescription = str(in.Notes), str(in.SourceGUID), str(in.PurchaseDescription)
	sv.SalesLedgerAccount, sv.PurchaseLedgerAccount = refs.salesLedger, refs.purchaseLedger
	sv.SalesTaxRate, sv.PurchaseTaxRate = refs.salesTax, refs.purchaseTax
	if in.CostPrice != nil {
		sv.CostPrice = *in.CostPrice
	}
	if in.Active != nil {
		sv.Active = *in.Active
	}
	if in.SalesRates != nil {
		for _, rt := range *in.SalesRates {
			name := str(rt.RateName)
			if name == "" {
				name = "Rate"
			}
			typ := str(rt.ServiceRateTypeID)
			if typ == "" {
				typ = "RATE" // [I]
			}
			sv.SalesRates = append(sv.SalesRates, ServiceRate{
				ID: s.newID(), DisplayedAs: name, RateName: name, Rate: *rt.Rate, RateIncludesTax: rt.RateIncludesTax,
				ServiceRateType: Base{ID: typ, DisplayedAs: name, Path: "/service_rate_types/" + typ},
			})
		}
	}
	b.services[sv.ID] = sv
	b.inputs[sv.ID] = merged
	resp := jsonResponse(status, sv)
	s.rememberLocked(b, "service", idem, resp)
	return resp
}

func (s *Server) getService(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sv, ok := call.business.services[r.PathValue("id")]
	if !ok || sv.DeletedAt != nil {
		return notFound()
	}
	return jsonResponse(http.StatusOK, sv)
}

// listServices supports search (item code or description), active and
// updated_or_created_since.
func (s *Server) listServices(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	active := r.URL.Query().Get("active")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*Service
	for _, id := range b.serviceOrder {
		sv := b.services[id]
		switch {
		case sv.DeletedAt != nil, !lp.changedSince(sv.CreatedAt, sv.UpdatedAt),
			active != "" && (active == "true") != sv.Active,
			lp.search != "" && !containsFold(sv.ItemCode, lp.search) && !containsFold(sv.Description, lp.search):
			continue
		}
		items = append(items, sv)
	}
	return listOf(r, "services", items, lp, func(sv *Service) any {
		return baseItem{ID: sv.ID, DisplayedAs: sv.DisplayedAs, Path: sv.Path}
	})
}
