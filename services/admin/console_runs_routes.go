package admin

import "net/http"

// routesRuns registers the console's runs, run and dead-letter pages:
//
//	GET  /runs                           runs with every ListRuns filter, paged (console_runs.go)
//	POST /runs/retry                     RetryRuns of the selected runs
//	POST /runs/retry-matching            RetryRuns by filter: a dry-run count, then confirmed
//	GET  /runs/{id}                      one run: attempts, timeline, payloads, catalogued fix (console_run.go)
//	POST /runs/{id}/retry                RetryRuns of that run
//	GET  /dead-letters                   banner, groups, filter and preview (console_dlq.go)
//	POST /dead-letters/replay            a replay job at a chosen rate (replayjobs.go)
//	GET  /dead-letters/jobs/{id}         its progress; POST …/cancel stops it
//	POST /dead-letters/purge             a dry-run count, then PurgeDeadLetters with that count
//
// The replay jobs live in this handler's registry (the admin process's
// memory): a restart forgets them, and what they had not moved stays in the
// DLQ.
func (s *Service) routesRuns(mux *http.ServeMux) {
	mux.Handle("GET /runs", s.console(http.HandlerFunc(s.handleRuns)))
	mux.Handle("POST /runs/retry", s.console(http.HandlerFunc(s.handleRetryRuns)))
	mux.Handle("POST /runs/retry-matching", s.console(http.HandlerFunc(s.handleRetryMatching)))
	mux.Handle("GET /runs/{id}", s.console(http.HandlerFunc(s.handleRun)))
	mux.Handle("POST /runs/{id}/retry", s.console(http.HandlerFunc(s.handleRetryRun)))

	dlq := dlqConsole{s: s, jobs: newReplayJobs(s.ReplayDeadLetters)}
	mux.Handle("GET /dead-letters", s.console(http.HandlerFunc(dlq.handlePage)))
	mux.Handle("POST /dead-letters/replay", s.console(http.HandlerFunc(dlq.handleReplay)))
	mux.Handle("GET /dead-letters/jobs/{id}", s.console(http.HandlerFunc(dlq.handleJob)))
	mux.Handle("POST /dead-letters/jobs/{id}/cancel", s.console(http.HandlerFunc(dlq.handleCancel)))
	mux.Handle("POST /dead-letters/purge", s.console(http.HandlerFunc(dlq.handlePurge)))
}
