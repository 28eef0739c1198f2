package magentosim

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// simHandler serves the simulator's own JSON API under /__sim/ (outside Magento's
// paths): inspection, operator actions and data generation. It answers even when
// the shop is down, so tests can observe an outage.
func (s *Shop) simHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__sim/status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		st := map[string]any{
			"connected": s.connectedLocked(), "tenant_id": s.tenantID, "base_url": s.baseURL,
			"down": s.down, "pairing_code_pending": s.pairingHash != "",
		}
		s.mu.Unlock()
		st["outbox"] = s.OutboxCounts()
		simJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /__sim/outbox", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, map[string]any{"counts": s.OutboxCounts(), "rows": s.Outbox()})
	})
	mux.HandleFunc("GET /__sim/sync-state", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, s.SyncStates())
	})
	mux.HandleFunc("POST /__sim/pairing-code", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, map[string]string{"pairing_code": s.GeneratePairingCode()})
	})
	mux.HandleFunc("POST /__sim/seed", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Seed       uint64  `json:"seed"`
			Customers  int     `json:"customers"`
			Invoices   int     `json:"invoices"`
			GuestShare float64 `json:"guest_share"`
			PaidShare  float64 `json:"paid_share"`
			SpreadDays int     `json:"spread_days"`
		}
		if !decodeSim(w, r, &in) {
			return
		}
		rng := rand.New(rand.NewPCG(in.Seed, in.Seed^0x9e3779b97f4a7c15))
		res := s.Seed(rng, Options{
			Customers: in.Customers, Invoices: in.Invoices, GuestShare: in.GuestShare, PaidShare: in.PaidShare,
			Spread: time.Duration(in.SpreadDays) * 24 * time.Hour,
		})
		simJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /__sim/drain", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, map[string]any{"attempted": s.DrainOnce(r.Context()), "outbox": s.OutboxCounts()})
	})
	mux.HandleFunc("GET /__sim/invoices", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, s.Invoices())
	})
	mux.HandleFunc("POST /__sim/invoices", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Seed       uint64 `json:"seed"`
			CustomerID int64  `json:"customer_id"`
			Paid       bool   `json:"paid"`
		}
		if !decodeSim(w, r, &in) {
			return
		}
		rng := rand.New(rand.NewPCG(in.Seed, uint64(time.Now().UnixNano())))
		inv, err := s.CreateRandomInvoice(rng, in.CustomerID, in.Paid)
		if err != nil {
			simError(w, err)
			return
		}
		simJSON(w, http.StatusCreated, inv)
	})
	mux.HandleFunc("POST /__sim/invoices/{id}/pay", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			simJSON(w, http.StatusBadRequest, map[string]string{"error": "id must be an integer"})
			return
		}
		if err := s.PayInvoice(id); err != nil {
			simError(w, err)
			return
		}
		inv, _ := s.Invoice(id)
		simJSON(w, http.StatusOK, inv)
	})
	mux.HandleFunc("GET /__sim/customers", func(w http.ResponseWriter, r *http.Request) {
		simJSON(w, http.StatusOK, s.Customers())
	})
	mux.HandleFunc("POST /__sim/disconnect", func(w http.ResponseWriter, r *http.Request) {
		res := map[string]any{"acknowledged": true}
		if err := s.Disconnect(r.Context()); err != nil {
			res = map[string]any{"acknowledged": false, "error": err.Error()}
		}
		simJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /__sim/requeue", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ID  int64 `json:"id"`
			All bool  `json:"all"`
		}
		if !decodeSim(w, r, &in) {
			return
		}
		switch {
		case in.All == (in.ID != 0):
			simJSON(w, http.StatusBadRequest, map[string]string{"error": "Exactly one of --id or --all is required."})
		case in.All:
			simJSON(w, http.StatusOK, map[string]int{"requeued": s.RequeueAll()})
		default:
			if err := s.Requeue(in.ID); err != nil {
				simError(w, err)
				return
			}
			simJSON(w, http.StatusOK, map[string]int{"requeued": 1})
		}
	})
	mux.HandleFunc("POST /__sim/down", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Down bool `json:"down"`
		}
		if !decodeSim(w, r, &in) {
			return
		}
		s.SetDown(in.Down)
		simJSON(w, http.StatusOK, map[string]bool{"down": in.Down})
	})
	mux.HandleFunc("POST /__sim/gc", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Days int `json:"days"`
		}
		if !decodeSim(w, r, &in) {
			return
		}
		if in.Days < 1 {
			in.Days = 30
		}
		simJSON(w, http.StatusOK, map[string]int{"purged": s.GC(time.Duration(in.Days) * 24 * time.Hour)})
	})
	return mux
}

func simJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func simError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	simJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeSim reads an optional JSON body (empty means defaults).
func decodeSim(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		simJSON(w, http.StatusBadRequest, map[string]string{"error": "body is not valid JSON: " + err.Error()})
		return false
	}
	return true
}
