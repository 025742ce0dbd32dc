package openapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/twinstac/twinstac/catalog"
)

// RateLimit limits requests per token (per user for OIDC callers, per
// client address for anonymous ones) with a token bucket. Zero Rate
// turns it off; admins are exempt.
type RateLimit struct {
	// Rate is the sustained requests per second.
	Rate float64
	// Burst is how many requests may come at once.
	Burst int
}

// limiters holds one bucket per caller key, dropping idle ones.
type limiters struct {
	cfg  RateLimit
	mu   sync.Mutex
	m    map[string]*limiterEntry
	seen time.Time // last sweep
}

type limiterEntry struct {
	l    *rate.Limiter
	last time.Time
}

func (ls *limiters) get(key string, now time.Time) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*limiterEntry{}
	}
	// Sweep buckets idle long enough to be full again, at most once a minute.
	if now.Sub(ls.seen) > time.Minute {
		full := time.Duration(float64(ls.cfg.Burst)/ls.cfg.Rate*float64(time.Second)) + time.Minute
		for k, e := range ls.m {
			if now.Sub(e.last) > full {
				delete(ls.m, k)
			}
		}
		ls.seen = now
	}
	e := ls.m[key]
	if e == nil {
		e = &limiterEntry{l: rate.NewLimiter(rate.Limit(ls.cfg.Rate), ls.cfg.Burst)}
		ls.m[key] = e
	}
	e.last = now
	return e.l
}

// rateLimit answers 429 with Retry-After when the caller's bucket is empty.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.cfg.RateLimit.Rate <= 0 {
		return next
	}
	if s.cfg.RateLimit.Burst <= 0 {
		s.cfg.RateLimit.Burst = int(math.Max(1, math.Ceil(s.cfg.RateLimit.Rate)))
	}
	ls := &limiters{cfg: s.cfg.RateLimit}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := CallerOf(r.Context())
		if c.IsAdmin() {
			next.ServeHTTP(w, r)
			return
		}
		key := "anonymous:" + clientAddr(r)
		switch {
		case c.TokenID != "":
			key = "token:" + c.TokenID
		case !c.IsAnonymous():
			key = "user:" + c.User
		}
		now := time.Now()
		res := ls.get(key, now).ReserveN(now, 1)
		if delay := res.DelayFrom(now); delay > 0 {
			res.CancelAt(now)
			secs := int(math.Ceil(delay.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeProblem(w, r, catalog.Errorf(catalog.ETOOMANY, "too many requests: the limit is %g per second (bursts of %d); retry in %d s", s.cfg.RateLimit.Rate, s.cfg.RateLimit.Burst, secs))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the client's address without the port.
func clientAddr(r *http.Request) string {
	addr := r.RemoteAddr
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}
