package secrets_test

import (
	"context"
	"fmt"

	"certops/secrets"
)

func ExampleCache_Resolve() {
	env := map[string]string{"SHOP_TLS": `{"cert":"-----BEGIN CERTIFICATE-----...","key":"-----BEGIN PRIVATE KEY-----..."}`}
	cache, err := secrets.New(secrets.Options{
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		panic(err)
	}
	cert, err := cache.Resolve(context.Background(), "$env://SHOP_TLS/cert")
	fmt.Printf("%s %v\n", cert, err)
	_, err = cache.Resolve(context.Background(), "$env://SHOP_TLS/chain")
	fmt.Println(err)
	// Output:
	// -----BEGIN CERTIFICATE-----... <nil>
	// secret $env://SHOP_TLS/chain: environment variable SHOP_TLS: field chain: not found
}
