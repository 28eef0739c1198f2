package admin

import (
	"net/http"
	"strings"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// routesConnect registers the connect and disconnect pages of a tenant.
func (s *Service) routesConnect(mux *http.ServeMux) {
	mux.Handle("GET /tenants/{tenant}/connect/magento", s.console(http.HandlerFunc(s.handleMagentoForm)))
	mux.Handle("POST /tenants/{tenant}/connect/magento", s.console(http.HandlerFunc(s.handleMagentoConnect)))
	mux.Handle("GET /tenants/{tenant}/connect/sage", s.console(http.HandlerFunc(s.handleSageConnectPage)))
	mux.Handle("POST /tenants/{tenant}/connect/sage", s.console(http.HandlerFunc(s.handleSageConnect)))
	mux.Handle("GET /tenants/{tenant}/disconnect/{side}", s.console(http.HandlerFunc(s.handleDisconnectConfirm)))
	mux.Handle("POST /tenants/{tenant}/disconnect/{side}", s.console(http.HandlerFunc(s.handleDisconnect)))
}

// connectPage is the Magento pairing form or the Sage connect page.
type connectPage struct {
	T *ledgerv1.Tenant
	// ShopURL and the pairing code are never echoed back: the code is
	// single use, and a refused one is useless.
	ShopURL string
	// Field is the form field Error names ("shop_url", "pairing_code"; ""
	// for an error of the whole form).
	Field, Error string
}

// consoleTenant loads the tenant of the path through GetTenant, or renders
// the error page and answers nil.
func (s *Service) consoleTenant(w http.ResponseWriter, r *http.Request) *ledgerv1.Tenant {
	got, err := s.GetTenant(r.Context(), &ledgerv1.GetTenantRequest{TenantId: r.PathValue("tenant")})
	if err != nil {
		s.renderConsoleMessage(w, r, httpStatus(err), page{Title: "No such tenant", Problem: rpcMessage(err),
			Fix: "Pick the tenant from the tenants page.", Back: "/dashboard"})
		return nil
	}
	return got.GetTenant()
}

// handleMagentoForm is the pairing form: shop URL and pairing code.
func (s *Service) handleMagentoForm(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	s.renderConsole(w, r, http.StatusOK, "connect_magento.html", "Connect the shop of "+t.GetTenantId(),
		connectPage{T: t, ShopURL: t.GetMagentoBaseUrl()})
}

// handleMagentoConnect submits the pairing form to ConnectMagento; its error
// is shown as the RPC reports it, next to the field it concerns.
func (s *Service) handleMagentoConnect(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	p := connectPage{T: t, ShopURL: strings.TrimSpace(r.PostFormValue("shop_url"))}
	resp, err := s.ConnectMagento(r.Context(), &ledgerv1.ConnectMagentoRequest{TenantId: t.GetTenantId(),
		ShopUrl: p.ShopURL, PairingCode: r.PostFormValue("pairing_code")})
	if err != nil {
		p.Error = rpcMessage(err)
		p.Field = connectErrorField(p.Error)
		s.renderConsole(w, r, httpStatus(err), "connect_magento.html", "Connect the shop of "+t.GetTenantId(), p)
		return
	}
	st := resp.GetTenant().GetMagentoConnectionStatus()
	if st == "active" {
		s.setFlash(w, flashOK, "The shop is paired and answered the signed ping: Magento is active.")
	} else {
		s.setFlash(w, flashError, "The shop took the new key but did not answer the signed ping: Magento is "+st+". Check the shop's clock, https and module, then pair again.")
	}
	http.Redirect(w, r, "/tenants/"+t.GetTenantId(), http.StatusSeeOther)
}

// connectErrorField is the pairing form field a ConnectMagento error is
// about: the RPC names shop_url when the URL is wrong; a refused or
// malformed code is the pairing code's problem; anything else (the shop
// unreachable, the module missing) concerns the whole form.
func connectErrorField(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.HasPrefix(m, "shop_url"):
		return "shop_url"
	case strings.HasPrefix(m, "pairing_code") || strings.Contains(m, "pairing code"):
		return "pairing_code"
	}
	return ""
}

// handleSageConnectPage explains the Sage connection and offers the button.
func (s *Service) handleSageConnectPage(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	s.renderConsole(w, r, http.StatusOK, "connect_sage.html", "Connect Sage for "+t.GetTenantId(), connectPage{T: t})
}

// handleSageConnect starts the OAuth flow (StartSageConnect) and sends the
// browser to Sage's authorization page.
func (s *Service) handleSageConnect(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	resp, err := s.StartSageConnect(r.Context(), &ledgerv1.StartSageConnectRequest{TenantId: t.GetTenantId()})
	if err != nil {
		s.renderConsole(w, r, httpStatus(err), "connect_sage.html", "Connect Sage for "+t.GetTenantId(),
			connectPage{T: t, Error: rpcMessage(err)})
		return
	}
	http.Redirect(w, r, resp.GetAuthorizeUrl(), http.StatusSeeOther)
}

// disconnectPage is the confirmation of a disconnect.
type disconnectPage struct {
	T *ledgerv1.Tenant
	// Side is magento or sage.
	Side  string
	Error string
}

// handleDisconnectConfirm names the tenant and what a disconnect does.
func (s *Service) handleDisconnectConfirm(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	side := r.PathValue("side")
	if side != "magento" && side != "sage" {
		s.renderConsoleMessage(w, r, http.StatusNotFound, page{Title: "Nothing to disconnect",
			Problem: "side: use magento or sage.", Back: "/tenants/" + t.GetTenantId()})
		return
	}
	s.renderConsole(w, r, http.StatusOK, "connect_disconnect.html", "Disconnect "+side+" of "+t.GetTenantId(),
		disconnectPage{T: t, Side: side})
}

// handleDisconnect runs DisconnectMagento or DisconnectSage.
func (s *Service) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	var err error
	side := r.PathValue("side")
	switch side {
	case "magento":
		_, err = s.DisconnectMagento(r.Context(), &ledgerv1.DisconnectMagentoRequest{TenantId: t.GetTenantId()})
	case "sage":
		_, err = s.DisconnectSage(r.Context(), &ledgerv1.DisconnectSageRequest{TenantId: t.GetTenantId()})
	default:
		s.renderConsoleMessage(w, r, http.StatusNotFound, page{Title: "Nothing to disconnect",
			Problem: "side: use magento or sage.", Back: "/tenants/" + t.GetTenantId()})
		return
	}
	if err != nil {
		s.renderConsole(w, r, httpStatus(err), "connect_disconnect.html", "Disconnect "+side+" of "+t.GetTenantId(),
			disconnectPage{T: t, Side: side, Error: rpcMessage(err)})
		return
	}
	what := map[string]string{"magento": "The shop is disconnected: its api key is forgotten and its webhooks are refused until it is paired again.",
		"sage": "Sage is disconnected: its tokens are revoked and the tenant's writes are held until Sage is connected again."}[side]
	s.setFlash(w, flashOK, what)
	http.Redirect(w, r, "/tenants/"+t.GetTenantId(), http.StatusSeeOther)
}
