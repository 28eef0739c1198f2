package admin

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// minPasswordCost is the lowest bcrypt cost ADMIN_OPERATOR_PASSWORD_HASH may
// use (bcrypt.DefaultCost).
const minPasswordCost = bcrypt.DefaultCost

// checkPasswordHash validates ADMIN_OPERATOR_PASSWORD_HASH ("" is fine: no
// operator password). The hash is never echoed.
func checkPasswordHash(hash string) error {
	if hash == "" {
		return nil
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return errors.New("not a bcrypt hash: make one with htpasswd -nbBC 12 operator 'the password' | cut -d: -f2 (it starts with $2)")
	}
	if cost < minPasswordCost {
		return fmt.Errorf("bcrypt cost %d is too low: use at least %d (htpasswd -nbBC 12 …)", cost, minPasswordCost)
	}
	return nil
}

// passwordOK reports whether presented is the operator password (false when
// none is configured). bcrypt compares in constant time.
func (s *Service) passwordOK(presented string) bool {
	hash := s.cfg.OperatorPasswordHash.Reveal()
	if hash == "" || presented == "" || len(presented) > 72 {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(presented)) == nil
}

// Failed console logins are limited per admin process: after
// loginFailuresPerMinute failures within a minute every login is refused
// until the minute is over, so the operator token and password cannot be
// guessed online (and bcrypt cannot be used to burn the CPU). A global limit,
// not per client: behind a proxy every client has the proxy's address.
const loginFailuresPerMinute = 10

type loginLimiter struct {
	mu       sync.Mutex
	start    time.Time
	failures int
}

// allowed reports whether a login may be tried now.
func (l *loginLimiter) allowed(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= time.Minute {
		l.start, l.failures = now, 0
	}
	return l.failures < loginFailuresPerMinute
}

// failed counts a refused login.
func (l *loginLimiter) failed(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= time.Minute {
		l.start, l.failures = now, 0
	}
	l.failures++
}
