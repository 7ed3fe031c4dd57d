package certcheck

import (
	"fmt"
	"time"
)

// Step is one step of the public TLS certificate lifetime schedule: from
// From on, a publicly trusted leaf may be valid for at most MaxDays.
type Step struct {
	From    time.Time
	MaxDays int
}

// Schedule is the maximum validity of publicly trusted TLS server
// certificates by issuance date: 398 days (CA/B Forum Baseline
// Requirements 6.3.2 since 2020-09-01), then ballot SC-081: 200 days from
// 2026-03-15, 100 days from 2027-03-15 and 47 days from 2029-03-15. It is
// sorted by From.
var Schedule = []Step{
	{time.Date(2020, 9, 1, 0, 0, 0, 0, time.UTC), 398},
	{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 200},
	{time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC), 100},
	{time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 47},
}

// MaxLifetimeDays returns the maximum lifetime, in days, of a public leaf
// issued at t (notBefore), or 0 before the schedule (no limit checked).
func MaxLifetimeDays(t time.Time) int {
	days := 0
	for _, s := range Schedule {
		if !t.Before(s.From) {
			days = s.MaxDays
		}
	}
	return days
}

// Lifetime returns the validity period of a certificate as the Baseline
// Requirements count it (1.6.4): from notBefore to notAfter inclusive, so
// one second more than the difference.
func Lifetime(notBefore, notAfter time.Time) time.Duration {
	return notAfter.Sub(notBefore) + time.Second
}

// lifetimeFinding checks the lifetime of leaf against the schedule; public
// picks the check (publicly or privately trusted).
func lifetimeMessage(notBefore, notAfter time.Time) (string, bool) {
	maxDays := MaxLifetimeDays(notBefore)
	if maxDays == 0 {
		return "", false
	}
	life := Lifetime(notBefore, notAfter)
	if life <= time.Duration(maxDays)*24*time.Hour {
		return "", false
	}
	return fmt.Sprintf("the leaf is valid for %s, over the %d days that publicly trusted certificates issued on %s may have (CA/B Forum BR 6.3.2, ballot SC-081)",
		days(life), maxDays, notBefore.UTC().Format(time.DateOnly)), true
}

// days formats a lifetime in whole days (the inclusive second dropped).
func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}
