package sagesim

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkSimpleRequests measures GET /v3.1/contacts?search=… through a real
// loopback HTTP server with parallel clients, and reports requests per second.
func BenchmarkSimpleRequests(b *testing.B) {
	e := loggedIn(b, Config{Now: time.Now})
	for i := range 200 {
		e.customer(fmt.Sprintf("Customer %d", i), fmt.Sprintf("M%d", i))
	}
	transport := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	url := e.srv.URL + "/v3.1/contacts?search=customer%2019&items_per_page=20"
	token := "Bearer " + e.access

	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
