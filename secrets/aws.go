package secrets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// awsCurrent is the version stage read: the secret's current value.
const awsCurrent = "AWSCURRENT"

func init() { Register(Registration{Name: "aws", Open: openAWS, ManagerFields: awsManagerFields}) }

// awsManagerFields are the fields of APISIX's AWS secret object.
var awsManagerFields = ManagerFields{
	Required: []string{"id", "region", "access_key_id", "secret_access_key"},
	Optional: []string{"endpoint_url", "session_token"},
}

// awsProvider resolves $secret://aws/ references: through the named secret
// manager that the first path segment names, if there is one, else with the
// SDK's default configuration.
type awsProvider struct {
	env      lazy[*awsClient]
	managers map[string]*awsClient // by manager id
}

var _ interface {
	Provider
	Locator
} = (*awsProvider)(nil)

func openAWS(ctx context.Context, cfg ProviderConfig) (Provider, error) {
	p := &awsProvider{managers: make(map[string]*awsClient)}
	p.env.init = func(ctx context.Context) (*awsClient, error) {
		c := cfg.AWSConfig
		if c == nil {
			loaded, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				return nil, fmt.Errorf("aws: load configuration: %w", err)
			}
			c = &loaded
		}
		return newAWSClient(*c, cfg.UserAgent), nil
	}
	for _, m := range cfg.Managers {
		vals, err := m.values(cfg.Getenv)
		if err != nil {
			return nil, err
		}
		c := aws.Config{
			Region:      vals["region"],
			Credentials: credentials.NewStaticCredentialsProvider(vals["access_key_id"], vals["secret_access_key"], vals["session_token"]),
		}
		if cfg.AWSConfig != nil {
			c.HTTPClient, c.RetryMaxAttempts = cfg.AWSConfig.HTTPClient, cfg.AWSConfig.RetryMaxAttempts
		}
		if u := vals["endpoint_url"]; u != "" {
			c.BaseEndpoint = aws.String(u)
		}
		p.managers[m.ID] = newAWSClient(c, cfg.UserAgent)
	}
	return p, nil
}

func (p *awsProvider) route(ctx context.Context, refPath string) (*awsClient, string, error) {
	id, rest, _ := strings.Cut(refPath, "/")
	if c, ok := p.managers[id]; ok && rest != "" {
		return c, rest, nil
	}
	c, err := p.env.get(ctx)
	return c, refPath, err
}

// Fetch reads $secret://aws/<secret-id>[/<json-field>] or
// $secret://aws/<manager-id>/<secret-id>[/<json-field>].
func (p *awsProvider) Fetch(ctx context.Context, refPath string) ([]byte, error) {
	c, path, err := p.route(ctx, refPath)
	if err != nil {
		return nil, err
	}
	return c.fetch(ctx, path)
}

// Locate names the account (the environment's or a manager's). The secret
// is the split found earlier, else the whole path.
func (p *awsProvider) Locate(refPath string) Location {
	id, rest, _ := strings.Cut(refPath, "/")
	store, c, path := "aws", (*awsClient)(nil), refPath
	if m, ok := p.managers[id]; ok && rest != "" {
		store, c, path = "aws secret manager "+id, m, rest
	} else if v, ok := p.env.peek(); ok {
		c = v
	}
	if c != nil {
		c.mu.Lock()
		s, ok := c.splits[path]
		c.mu.Unlock()
		if ok {
			return Location{Store: store, Secret: s.id}
		}
	}
	return Location{Store: store, Secret: path}
}

// awsClient reads AWS Secrets Manager. It is safe for concurrent use.
type awsClient struct {
	sm *secretsmanager.Client

	mu     sync.Mutex          // guards splits
	splits map[string]awsSplit // reference path → where its id ends
}

// awsSplit is how a reference path divides into a secret id and a JSON
// field path (empty: the whole value).
type awsSplit struct {
	id    string
	field []string
}

func newAWSClient(cfg aws.Config, ua string) *awsClient {
	cfg.AppID = strings.ReplaceAll(ua, "/", "-") // AWS's user agent carries it as app/<id>
	return &awsClient{sm: secretsmanager.NewFromConfig(cfg), splits: make(map[string]awsSplit)}
}

// fetch reads $secret://aws/<secret-id>[/<json-field>]. A secret id may hold
// "/": the longest prefix of the path that exists is the id, and the rest is
// the field path. The split found is remembered; if its secret disappears,
// the search runs again.
func (a *awsClient) fetch(ctx context.Context, refPath string) ([]byte, error) {
	a.mu.Lock()
	s, ok := a.splits[refPath]
	a.mu.Unlock()
	if ok {
		b, err := a.read(ctx, s)
		if !isAWSNotFound(err) {
			return b, err
		}
		a.mu.Lock()
		delete(a.splits, refPath)
		a.mu.Unlock()
	}
	segs := strings.Split(refPath, "/")
	for n := len(segs); n >= 1; n-- {
		s := awsSplit{id: strings.Join(segs[:n], "/"), field: segs[n:]}
		b, err := a.read(ctx, s)
		if isAWSNotFound(err) {
			continue
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			// The secret exists (even if the field does not): this is the
			// split, and the search need not run again.
			a.mu.Lock()
			a.splits[refPath] = s
			a.mu.Unlock()
		}
		return b, err
	}
	return nil, fmt.Errorf("aws: no secret named by %s or a prefix of it: %w", refPath, ErrNotFound)
}

// read gets the current value of s.id and extracts s.field.
func (a *awsClient) read(ctx context.Context, s awsSplit) ([]byte, error) {
	v, err := ReadOnce(ctx, "aws:"+s.id, func() ([]byte, error) {
		out, err := a.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId:     aws.String(s.id),
			VersionStage: aws.String(awsCurrent),
		})
		if err != nil {
			return nil, &awsError{id: s.id, err: err}
		}
		switch {
		case out.SecretString != nil:
			return []byte(*out.SecretString), nil
		case out.SecretBinary != nil:
			return out.SecretBinary, nil
		}
		return nil, fmt.Errorf("aws: secret %s has neither SecretString nor SecretBinary", s.id)
	})
	if err != nil {
		return nil, err
	}
	if len(s.field) == 0 {
		return v, nil
	}
	b, err := jsonField(v, s.field)
	if err != nil {
		return nil, fmt.Errorf("aws: secret %s: %w", s.id, err)
	}
	return b, nil
}

// awsError is an error of GetSecretValue for one id. The SDK's errors carry
// the operation, request id and AWS's message, never the value.
type awsError struct {
	id  string
	err error
}

func (e *awsError) Error() string {
	return fmt.Sprintf("aws: secret %s: %v", e.id, e.err)
}

func (e *awsError) Unwrap() error { return e.err }

// Is makes a transport failure or a 5xx answer match ErrUnavailable.
func (e *awsError) Is(target error) bool {
	if target != ErrUnavailable {
		return false
	}
	var ne net.Error
	var status interface{ HTTPStatusCode() int }
	return errors.As(e.err, &ne) || errors.As(e.err, &status) && status.HTTPStatusCode() >= 500
}

func isAWSNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	return errors.As(err, &rnf)
}
