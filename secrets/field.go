package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// jsonField returns the field named by path (one JSON object key per
// segment) of the JSON document data. A string field yields its text; any
// other JSON value yields its compact JSON encoding. Errors describe the
// shape of the document, never its content: encoding/json's syntax errors
// quote the offending character, so they are not wrapped.
func jsonField(data []byte, path []string) ([]byte, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, errors.New("value is not JSON, so it has no field " + strings.Join(path, "/"))
	}
	cur := doc
	for i, key := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %s: %s is not a JSON object", strings.Join(path, "/"), describe(path[:i]))
		}
		v, ok := obj[key]
		if !ok {
			return nil, fmt.Errorf("field %s: %w", strings.Join(path[:i+1], "/"), ErrNotFound)
		}
		cur = v
	}
	return fieldBytes(cur, strings.Join(path, "/"))
}

// fieldBytes turns a decoded JSON value into the bytes a field resolves to.
func fieldBytes(v any, name string) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case nil:
		return nil, fmt.Errorf("field %s is null", name)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("field %s cannot be encoded", name)
		}
		return b, nil
	}
}

func describe(path []string) string {
	if len(path) == 0 {
		return "the value"
	}
	return "field " + strings.Join(path, "/")
}
