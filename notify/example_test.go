package notify_test

import (
	"fmt"

	"certops/notify"
)

func ExampleParseURL() {
	for _, raw := range []string{
		"https://hooks.slack.com/services/T000/B000/XXXX",
		"alertmanager+http://alertmanager:9093",
		"https://ops.example.com/certops?events=stalled,failed",
	} {
		t, err := notify.ParseURL(raw)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t.Provider, t.Events)
	}
	// Output:
	// slack https://hooks.slack.com []
	// alertmanager http://alertmanager:9093 []
	// webhook https://ops.example.com [stalled failed]
}

func ExampleMessage_Title() {
	m := notify.Message{Event: notify.EventStalled, Name: "edge", Revision: "4a447f73e7fa0c1d2e3f"}
	fmt.Println(m.Title())
	// Output: edge: stalled at 4a447f73e7fa
}
