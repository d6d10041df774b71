package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
)

func TestCodesTable(t *testing.T) {
	// The specification's 14 codes, each with a status in the 4xx range and
	// an errdef category.
	all := []Code{BlobUnknown, BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, ManifestBlobUnknown,
		ManifestInvalid, ManifestUnknown, NameInvalid, NameUnknown, SizeInvalid, Unauthorized, Denied,
		Unsupported, TooManyRequests}
	if len(codes) != len(all) {
		t.Fatalf("table has %d codes, the specification 14", len(codes))
	}
	for _, c := range all {
		if !c.Known() || c.Message() == "" || c.Category() == nil {
			t.Errorf("%s: incomplete entry", c)
		}
		if s := c.Status(); s < 400 || s > 499 {
			t.Errorf("%s: status %d", c, s)
		}
		for _, r := range string(c) {
			if (r < 'A' || r > 'Z') && r != '_' {
				t.Errorf("%s: code has %q", c, r)
			}
		}
	}
	if Code("NOPE").Known() || Code("NOPE").Status() != 500 {
		t.Error("unknown code")
	}
}

func TestErrorsIs(t *testing.T) {
	err := fmt.Errorf("fetch: %w", BlobUnknown.WithMessage("blob %s", "sha256:x"))
	if !errors.Is(err, errdef.ErrNotFound) || errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("BLOB_UNKNOWN category: %v", err)
	}
	if !errors.Is(err, BlobUnknown) || errors.Is(err, ManifestUnknown) {
		t.Error("matching by code")
	}
	es := Errors{DigestInvalid.WithDetail("x"), Denied.WithDetail(nil)}
	if !errors.Is(es, errdef.ErrDigestMismatch) || !errors.Is(es, errdef.ErrDenied) {
		t.Error("Errors unwraps to every entry")
	}
}

func TestWireRoundTrip(t *testing.T) {
	in := Errors{ManifestInvalid.WithDetail(map[string]any{"path": "layers[0]"}), {Code: Unauthorized}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"errors":[{"code":"MANIFEST_INVALID"`) {
		t.Fatalf("envelope: %s", data)
	}
	var out Errors
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Code != ManifestInvalid || string(out[0].Detail.(json.RawMessage)) != `{"path":"layers[0]"}` || out[1].Detail != nil {
		t.Fatalf("decoded %#v", out)
	}
	empty, _ := json.Marshal(Errors(nil))
	if string(empty) != `{"errors":[]}` {
		t.Errorf("empty list: %s", empty)
	}
}

func TestWriteAndFromResponse(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   Code
		is     error
	}{
		{fmt.Errorf("x: %w", ManifestUnknown.WithMessage("no tag v1")), 404, ManifestUnknown, errdef.ErrNotFound},
		{fmt.Errorf("upload: %w", errdef.ErrDigestMismatch), 400, DigestInvalid, errdef.ErrDigestMismatch},
		{fmt.Errorf("auth: %w", errdef.ErrUnauthorized), 401, Unauthorized, errdef.ErrUnauthorized},
		{fmt.Errorf("lock: %w", errdef.ErrUnavailable), 503, Unknown, errdef.ErrUnavailable},
		{errors.New("disk on fire"), 500, Unknown, errdef.ErrUnavailable},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		Write(rec, c.err)
		resp := rec.Result()
		resp.Request = httptest.NewRequest("GET", "http://user:secret@reg.example/v2/a/manifests/v1", nil)
		if resp.StatusCode != c.status {
			t.Errorf("%v: status %d, want %d", c.err, resp.StatusCode, c.status)
		}
		re := FromResponse(resp)
		if len(re.Errors) != 1 || re.Errors[0].Code != c.code {
			t.Errorf("%v: decoded %+v", c.err, re.Errors)
		}
		if !errors.Is(re, c.is) {
			t.Errorf("%v: response error %v does not match %v", c.err, re, c.is)
		}
		if strings.Contains(re.Error(), "secret") {
			t.Errorf("credentials in message: %s", re)
		}
	}
}

func TestFromResponseNotJSON(t *testing.T) {
	for _, c := range []struct {
		status int
		ctype  string
		body   string
		is     error
		text   string
	}{
		{http.StatusNotFound, "text/plain", "404 page not found\n", errdef.ErrNotFound, "404 page not found"},
		{http.StatusBadGateway, "text/html", "<html>bad gateway</html>", errdef.ErrUnavailable, ""},
		{http.StatusTooManyRequests, "", strings.Repeat("x", 500), errdef.ErrTooManyRequests, strings.Repeat("x", 200) + "…"},
		{http.StatusForbidden, "application/json", `{"errors":[]}`, errdef.ErrDenied, `{"errors":[]}`},
	} {
		resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.ctype}}, Body: io.NopCloser(strings.NewReader(c.body))}
		re := FromResponse(resp)
		if !errors.Is(re, c.is) || re.Body != c.text {
			t.Errorf("%d: %#v", c.status, re)
		}
	}
}

func FuzzErrorsUnmarshal(f *testing.F) {
	f.Add([]byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"x","detail":{"a":1}}]}`))
	f.Add([]byte(`{"errors":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var es Errors
		if json.Unmarshal(data, &es) != nil {
			return
		}
		_ = es.Error()
		again, err := json.Marshal(es)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var es2 Errors
		if err := json.Unmarshal(again, &es2); err != nil || len(es2) != len(es) {
			t.Fatalf("round trip: %v %d/%d", err, len(es2), len(es))
		}
	})
}
