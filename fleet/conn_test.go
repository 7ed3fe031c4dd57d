package fleet

import (
	"net"
	"strings"
	"testing"
)

// TestConnectOnce: with no server listening, a one-shot connection fails
// at once and says why; a node's connection is made and keeps trying.
func TestConnectOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now

	c, err := Connect(ConnOptions{URLs: []string{url}, Once: true})
	if err == nil {
		c.Close()
		t.Fatal("Connect with Once to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("Connect with Once = %v, want the refused connection named", err)
	}

	c, err = Connect(ConnOptions{URLs: []string{url}})
	if err != nil {
		t.Fatalf("Connect without Once = %v, want a connection that keeps trying", err)
	}
	defer c.Close()
	if c.Connected() {
		t.Error("connected to a closed port")
	}
}

// TestRedactURLs: a password in a server URL never reaches an error.
func TestRedactURLs(t *testing.T) {
	got := redactURLs([]string{"nats://u:secret@127.0.0.1:4222", "nats://127.0.0.1:4223", "u:secret@%zz"})
	if strings.Contains(got, "secret") || !strings.Contains(got, "127.0.0.1:4223") {
		t.Errorf("redactURLs = %q", got)
	}
}
