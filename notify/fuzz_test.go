package notify_test

import (
	"strings"
	"testing"

	"certops/notify"
)

// FuzzParseURL: no input panics, and an error never quotes the URL's path
// (a Slack or Teams credential).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.slack.com/services/T/B/X", "teams+https://x/y?events=stalled", "alertmanager+http://am:9093",
		"https://x/?provider=slack&events=applied,bogus", "://", "slack+ftp://x/", "https://x/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := notify.ParseURL(raw)
		if err == nil {
			return
		}
		const secret = "/services/T/B/SECRETSECRET"
		if strings.Contains(raw, secret) && strings.Contains(err.Error(), "SECRETSECRET") {
			t.Errorf("ParseURL(%q) = %q quotes the path", raw, err)
		}
	})
}
