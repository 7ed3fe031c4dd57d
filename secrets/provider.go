package secrets

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"certops/secrets/ref"
)

// Provider fetches the values of one kind of reference from its store. A
// provider is registered under the name of its grammar in package ref
// (ref.Scheme.Name) by its own file's init function, so that a new store is
// a new file here and one in ref, not an edit of a switch.
//
// Fetch is called concurrently. path is ref.Reference.Path. Errors must not
// hold secret values; a store that cannot be reached or cannot serve
// should wrap ErrUnavailable, so that the cache notices an outage early.
// Reads of a secret that several references share (a certificate and its
// key are two fields of one secret) should go through ReadOnce.
type Provider interface {
	Fetch(ctx context.Context, path string) ([]byte, error)
}

// Locator is an optional capability of a Provider: where a path's value
// lives. References of one store that are failing together stop a refresh
// round early for that store; references of one secret are fetched one
// after the other and published together. Without a Locator, a provider is
// one store and each reference its own secret.
type Locator interface {
	Locate(path string) Location
}

// Location names a store (a Vault server, an AWS account) and a secret in it.
type Location struct {
	Store  string // as shown in logs and errors: "vault", "vault manager 1"
	Secret string
}

// Runner is an optional capability of a Provider: background work (token
// renewal) that runs while Cache.Run runs. Run returns when ctx ends.
type Runner interface {
	Run(ctx context.Context)
}

// ProviderConfig is what an Opener gets from the Cache's Options.
type ProviderConfig struct {
	Getenv     func(string) (string, bool)
	HTTPClient *http.Client // nil: the provider builds its own
	AWSConfig  *aws.Config  // nil: the SDK's default chain
	Logger     *slog.Logger // never nil
	UserAgent  string       // "certops/<version>"
	// Managers is the provider's list from the --secret-managers file.
	Managers []Manager
}

// Opener creates a provider, on the first reference that uses it.
type Opener func(ctx context.Context, cfg ProviderConfig) (Provider, error)

// Registration is a provider as registered: its name (a grammar of
// package ref), how to open it, and the fields of its entries in the
// --secret-managers file (empty: the provider has no named managers).
type Registration struct {
	Name          string
	Open          Opener
	ManagerFields ManagerFields
}

// ManagerFields are the fields of one provider's secret manager objects.
type ManagerFields struct {
	Required, Optional []string
}

var (
	registryMu sync.RWMutex // guards registry
	registry   = map[string]Registration{}
)

// Register makes a provider available. Its name must be a grammar
// registered in package ref. It panics on a name registered twice or
// unknown to ref: both are programming errors.
func Register(r Registration) {
	if !slices.Contains(ref.Providers(), r.Name) || r.Open == nil {
		panic("secrets: no reference grammar or no opener for provider " + r.Name)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[r.Name]; dup {
		panic("secrets: provider registered twice: " + r.Name)
	}
	registry[r.Name] = r
}

func registration(name string) (Registration, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	r, ok := registry[name]
	return r, ok
}

// providerSet opens each provider once, on first use, and runs the
// Runners among them while the Cache runs.
type providerSet struct {
	cfg func(name string) ProviderConfig
	bg  background

	mu     sync.Mutex // guards open
	opened map[string]*lazy[Provider]
}

func (s *providerSet) get(ctx context.Context, name string) (Provider, error) {
	s.mu.Lock()
	l, ok := s.opened[name]
	if !ok {
		reg, found := registration(name)
		open := reg.Open
		if !found {
			s.mu.Unlock()
			return nil, fmt.Errorf("no provider %q is registered", name)
		}
		l = &lazy[Provider]{init: func(ctx context.Context) (Provider, error) {
			p, err := open(ctx, s.cfg(name))
			if err != nil {
				return nil, err
			}
			if r, ok := p.(Runner); ok {
				s.bg.Go(r.Run)
			}
			return p, nil
		}}
		s.opened[name] = l
	}
	s.mu.Unlock()
	return l.get(ctx)
}

// lazy builds a value on first successful use. A failed init is retried on
// the next use, so a configuration fixed in the environment is picked up.
type lazy[T any] struct {
	init func(context.Context) (T, error)
	mu   sync.Mutex // guards v and ok
	v    T
	ok   bool
}

func (l *lazy[T]) get(ctx context.Context) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		return l.v, nil
	}
	v, err := l.init(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	l.v, l.ok = v, true
	return v, nil
}

// peek returns the value if it was built, without building it.
func (l *lazy[T]) peek() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.ok
}

// background runs functions for as long as its Run runs: those added
// before Run start with it, those added later start at once. Run returns
// once every one of them has returned.
type background struct {
	mu      sync.Mutex // guards ctx and pending
	ctx     context.Context
	pending []func(context.Context)
	wg      sync.WaitGroup
}

func (b *background) Go(f func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil {
		b.pending = append(b.pending, f)
		return
	}
	if b.ctx.Err() == nil {
		ctx := b.ctx
		b.wg.Go(func() { f(ctx) })
	}
}

func (b *background) Run(ctx context.Context) {
	b.mu.Lock()
	b.ctx = ctx
	for _, f := range b.pending {
		b.wg.Go(func() { f(ctx) })
	}
	b.pending = nil
	b.mu.Unlock()
	<-ctx.Done()
	b.wg.Wait()
}
