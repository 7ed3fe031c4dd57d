package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// awsCurrent is the version stage read: the secret's current value.
const awsCurrent = "AWSCURRENT"

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

func newAWSClient(ctx context.Context, cfg *aws.Config) (*awsClient, error) {
	if cfg == nil {
		c, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws: load configuration: %w", err)
		}
		cfg = &c
	}
	return &awsClient{sm: secretsmanager.NewFromConfig(*cfg), splits: make(map[string]awsSplit)}, nil
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
	v, err := memoized(ctx, "aws:"+s.id, func() ([]byte, error) {
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

func isAWSNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	return errors.As(err, &rnf)
}
