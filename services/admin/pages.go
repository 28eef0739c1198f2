package admin

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// pbtime formats a protobuf timestamp ("—" when unset).
	"pbtime": func(ts *timestamppb.Timestamp) string {
		if ts == nil || !ts.IsValid() || ts.AsTime().IsZero() {
			return "—"
		}
		return ts.AsTime().UTC().Format("2006-01-02 15:04:05Z")
	},
}).ParseFS(templateFS, "templates/*.html"))

// page is a one-message HTML page (errors and the OAuth outcome).
type page struct {
	Title   string
	Problem string
	Fix     string
	OK      bool
	Details [][2]string
	// Back is a console page to return to (console pages only).
	Back string
}

func (s *Service) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("rendering page", "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (s *Service) renderMessage(w http.ResponseWriter, code int, p page) {
	s.render(w, code, "message.html", p)
}

func (s *Service) renderSuccess(w http.ResponseWriter, tenantID string, res connectResult) {
	p := page{OK: true, Title: "Sage is connected",
		Problem: "Ledger will write this tenant's invoices, payments, credit notes and contacts to the Sage business below.",
		Fix:     "You can close this window. Check the connection with ledgerctl tenants show " + tenantID + "."}
	name := res.business.Name
	if name == "" {
		name = res.business.DisplayedAs
	}
	p.Details = append(p.Details, [2]string{"Tenant", tenantID}, [2]string{"Sage business", name}, [2]string{"Business id", res.business.ID})
	kinds := make([]string, 0, len(res.counts))
	for k := range res.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		p.Details = append(p.Details, [2]string{"Cached " + k, strconv.Itoa(res.counts[k])})
	}
	filled := "none (already set)"
	if len(res.filled) > 0 {
		filled = strings.Join(res.filled, ", ")
	}
	p.Details = append(p.Details, [2]string{"Policy defaults filled", filled})
	s.render(w, http.StatusOK, "message.html", p)
}
