package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Static credentials the AWS double accepts.
const (
	awsTestKeyID  = "AKIDCERTOPSTEST"
	awsTestSecret = "certops-test-secret-access-key"
	awsTestRegion = "eu-west-1"
)

// awsDouble is an in-process AWS Secrets Manager that follows the service's
// JSON 1.1 wire format (POST / with X-Amz-Target:
// secretsmanager.GetSecretValue, application/x-amz-json-1.1, __type error
// bodies) and verifies each request's SigV4 signature by signing it again.
type awsDouble struct {
	srv *httptest.Server
	tb  testing.TB

	mu       sync.Mutex
	strings  map[string]string // secret id → SecretString
	binaries map[string][]byte // secret id → SecretBinary
	denied   map[string]bool   // ids answered with AccessDeniedException
	requests []string          // SecretId of every request
}

func newAWSDouble(tb testing.TB) *awsDouble {
	tb.Helper()
	d := &awsDouble{tb: tb, strings: map[string]string{}, binaries: map[string][]byte{}, denied: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	tb.Cleanup(d.srv.Close)
	return d
}

// config is an SDK configuration pointed at the double with static
// credentials.
func (d *awsDouble) config() *aws.Config {
	return &aws.Config{
		Region:       awsTestRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(awsTestKeyID, awsTestSecret, ""),
		BaseEndpoint: aws.String(d.srv.URL),
		HTTPClient:   d.srv.Client(),
	}
}

func (d *awsDouble) put(id, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.strings[id] = value
}

func (d *awsDouble) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.requests
	d.requests = nil
	return r
}

func awsFail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "Message": msg})
}

func (d *awsDouble) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		awsFail(w, http.StatusBadRequest, "SerializationException", "unreadable body")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		awsFail(w, http.StatusNotFound, "UnknownOperationException", "want POST /")
		return
	}
	if got := r.Header.Get("X-Amz-Target"); got != "secretsmanager.GetSecretValue" {
		awsFail(w, http.StatusBadRequest, "UnknownOperationException", "unexpected X-Amz-Target "+got)
		return
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		awsFail(w, http.StatusBadRequest, "SerializationException", "unexpected Content-Type "+got)
		return
	}
	if msg := verifySigV4(r, body); msg != "" {
		d.tb.Errorf("AWS double: %s", msg)
		awsFail(w, http.StatusForbidden, "InvalidSignatureException", msg)
		return
	}
	var in struct {
		SecretId     string
		VersionStage string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		awsFail(w, http.StatusBadRequest, "SerializationException", "body is not JSON")
		return
	}
	d.mu.Lock()
	d.requests = append(d.requests, in.SecretId)
	s, isString := d.strings[in.SecretId]
	b, isBinary := d.binaries[in.SecretId]
	denied := d.denied[in.SecretId]
	d.mu.Unlock()
	if in.VersionStage != "AWSCURRENT" {
		awsFail(w, http.StatusBadRequest, "InvalidParameterException", "want VersionStage AWSCURRENT")
		return
	}
	if denied {
		awsFail(w, http.StatusBadRequest, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/certops is not authorized to perform: secretsmanager:GetSecretValue")
		return
	}
	if !isString && !isBinary {
		// The namespaced form of __type, as the service sends it.
		awsFail(w, http.StatusBadRequest, "com.amazonaws.secretsmanager#ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	out := map[string]any{
		"ARN":           "arn:aws:secretsmanager:" + awsTestRegion + ":123456789012:secret:" + in.SecretId + "-AbCdEf",
		"Name":          in.SecretId,
		"VersionId":     "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   1.767225600e9,
	}
	if isString {
		out["SecretString"] = s
	} else {
		out["SecretBinary"] = b // encoding/json writes base64, as the service does
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// verifySigV4 signs a copy of r again with the test credentials and the
// request's own date and signed headers, and compares the Authorization
// headers. It returns "" when they match.
func verifySigV4(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "missing SigV4 Authorization header"
	}
	var credential, signedHeaders string
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] != awsTestKeyID || scope[2] != awsTestRegion || scope[3] != "secretsmanager" || scope[4] != "aws4_request" {
		return "unexpected credential scope " + credential
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "bad X-Amz-Date"
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	// Go's server moves Content-Length out of the header map; restore it.
	req.ContentLength = r.ContentLength
	req.Header = http.Header{}
	for _, h := range strings.Split(signedHeaders, ";") {
		switch h {
		case "host":
		case "content-length":
			req.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		default:
			for _, v := range r.Header.Values(h) {
				req.Header.Add(h, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: awsTestKeyID, SecretAccessKey: awsTestSecret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", awsTestRegion, date); err != nil {
		return "re-sign: " + err.Error()
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return "signature mismatch: sent " + auth + ", computed " + got
	}
	return ""
}
