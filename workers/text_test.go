package workers

import (
	"encoding/json"
	"strings"
	"testing"
)

// A job's message and exception may quote what a twin printed or named;
// PostgreSQL refuses NUL and invalid UTF-8 in text and JSON, and would
// refuse the whole end of the job.
func TestStorableText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"nul\x00inside":        "nul\uFFFDinside",
		"bad \xff\xfe utf-8":   "bad \uFFFD utf-8",
		"ok ünïcödé ✓":         "ok ünïcödé ✓",
		"\x00":                 "\uFFFD",
		"phase run: \x00\xff!": "phase run: \uFFFD\uFFFD!",
	} {
		if got := storableText(in); got != want {
			t.Errorf("storableText(%q) = %q, want %q", in, got, want)
		}
	}
	ex := exception("could not start: /ws/\x00\xffname")
	if strings.Contains(string(ex), `\u0000`) || !json.Valid(ex) {
		t.Fatalf("exception keeps a NUL or is not JSON: %s", ex)
	}
}
