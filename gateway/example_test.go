package gateway_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"certops/fixtures"
	"certops/gateway"
)

// exampleTB lets the fixtures stop an example on failure.
type exampleTB struct{}

func (exampleTB) Helper()                        {}
func (exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

func Example() {
	ca := fixtures.NewRootCA(exampleTB{}, "example root")
	shop := ca.Server(exampleTB{}, "shop.example.com")

	gw := gateway.New(gateway.Options{})
	err := gw.Apply(gateway.Config{Entities: []gateway.Entity{{
		Name:   "shop",
		SNIs:   []string{"shop.example.com", "*.shop.example.com"},
		Chains: []tls.Certificate{shop.TLS(exampleTB{})},
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go gw.Serve(ctx, ln)

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: fixtures.Pool(ca)},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
		},
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get("https://shop.example.com/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var info gateway.ConnectionInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.Entity, info.SNI, info.TLSVersion, info.Protocol)
	// Output:
	// shop shop.example.com TLS 1.3 HTTP/2.0
}
