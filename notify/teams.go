package notify

import (
	"context"
	"net/http"
)

// Teams posts an Adaptive Card to a Microsoft Teams workflow ("When a
// Teams webhook request is received", Power Automate), the replacement of
// the retired Office 365 connectors: a message whose one attachment has
// content type application/vnd.microsoft.card.adaptive
// (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
type Teams struct {
	URL string
}

func (t *Teams) String() string { return "teams " + endpoint(t.URL) }

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"`
	Version string `json:"version"`
	Body    []any  `json:"body"`
}

type textBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Wrap   bool   `json:"wrap"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
}

type factSet struct {
	Type  string `json:"type"`
	Facts []fact `json:"facts"`
}

type fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

func (t *Teams) Request(ctx context.Context, m Message) (*http.Request, error) {
	color := "Good"
	if m.Event.problem() {
		color = "Attention"
	}
	body := []any{textBlock{Type: "TextBlock", Text: m.Title(), Wrap: true, Weight: "Bolder", Size: "Medium", Color: color}}
	var facts []fact
	for _, f := range []fact{{"Revision", m.Revision}, {"Source", m.Source}, {"Entity", m.Entity}} {
		if f.Value != "" {
			facts = append(facts, f)
		}
	}
	if len(facts) > 0 {
		body = append(body, factSet{Type: "FactSet", Facts: facts})
	}
	for _, l := range m.Lines() {
		body = append(body, textBlock{Type: "TextBlock", Text: l, Wrap: true})
	}
	msg := teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: adaptiveCard{
			Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
			Type:    "AdaptiveCard",
			Version: "1.4",
			Body:    body,
		},
	}}}
	req, _, err := postJSON(ctx, t.URL, msg)
	return req, err
}
