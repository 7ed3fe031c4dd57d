package notify

import (
	"context"
	"net/http"
	"strings"
)

// Slack posts to a Slack incoming webhook
// (https://api.slack.com/messaging/webhooks): "text" holds the headline,
// one attachment the body with a colour (good or danger). Mattermost,
// Rocket.Chat and Discord's /slack endpoint accept the same payload.
type Slack struct {
	URL string
	// Channel and Username override the webhook's defaults where the
	// service allows it (Mattermost does; Slack ignores them).
	Channel, Username string
}

func (s *Slack) String() string { return "slack " + endpoint(s.URL) }

type slackPayload struct {
	Text        string            `json:"text"`
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	Attachments []slackAttachment `json:"attachments,omitempty"`
}

type slackAttachment struct {
	Color    string   `json:"color"`
	Fallback string   `json:"fallback"`
	Text     string   `json:"text"`
	Footer   string   `json:"footer,omitempty"`
	MrkdwnIn []string `json:"mrkdwn_in"`
	TS       int64    `json:"ts"`
}

func (s *Slack) Request(ctx context.Context, m Message) (*http.Request, error) {
	color := "good"
	if m.Event.problem() {
		color = "danger"
	}
	lines := m.Lines()
	for i, l := range lines {
		lines[i] = slackEscape(l)
	}
	p := slackPayload{
		Text:     slackEscape(m.Title()),
		Channel:  s.Channel,
		Username: s.Username,
	}
	if len(lines) > 0 || m.Source != "" {
		p.Attachments = []slackAttachment{{
			Color:    color,
			Fallback: slackEscape(m.Title()),
			Text:     strings.Join(lines, "\n"),
			Footer:   slackEscape(m.Source),
			MrkdwnIn: []string{"text"},
			TS:       m.Time.Unix(),
		}}
	}
	req, _, err := postJSON(ctx, s.URL, p)
	return req, err
}

// slackEscape escapes the three characters Slack's message formatting
// reserves (https://api.slack.com/reference/surfaces/formatting#escaping).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
