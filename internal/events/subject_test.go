package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// validToken reports whether tok is one token every NATS client and tool
// accepts literally.
func validToken(tok string) bool {
	if tok == "" || tok == "*" || tok == ">" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return server.IsValidLiteralSubject("a." + tok + ".b")
}

func TestEscapeToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"water-tank_1", "water-tank_1"},
		{"", "%"},
		{"%", "%25"},
		{"a.b", "a%2Eb"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a b\tc\nd\re", "a%20b%09c%0Ad%0De"},
		{"100%", "100%25"},
		{"%25", "%2525"},
		{"café", "caf%C3%A9"},
		{"\x00\x7f", "%00%7F"},
		{"$JS", "$JS"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got := EscapeToken(tc.in)
			if got != tc.want {
				t.Fatalf("EscapeToken(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !validToken(got) {
				t.Fatalf("EscapeToken(%q) = %q is not a valid token", tc.in, got)
			}
			if back, ok := UnescapeToken(got); !ok || back != tc.in {
				t.Fatalf("UnescapeToken(%q) = %q, %v; want %q", got, back, ok, tc.in)
			}
		})
	}
}

func TestUnescapeTokenRefusesWhatEscapeDoesNotMake(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "a.b", "a b", "%2", "%zz", "%41", "%2e", "*", ">", "%%"} {
		if s, ok := UnescapeToken(tok); ok {
			t.Errorf("UnescapeToken(%q) = %q, want a refusal", tok, s)
		}
	}
}

func FuzzEscapeToken(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "*", ">", "%", "%25", " ", "x\x00y", "café", "collections/c/items/i"} {
		f.Add(s, s+".")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := EscapeToken(a), EscapeToken(b)
		if !validToken(ta) {
			t.Fatalf("EscapeToken(%q) = %q is not a valid token", a, ta)
		}
		if back, ok := UnescapeToken(ta); !ok || back != a {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", a, back, ok)
		}
		if (a == b) != (ta == tb) {
			t.Fatalf("%q and %q escape to %q and %q", a, b, ta, tb)
		}
		// A stream name is valid and distinct too.
		na, nb := StreamName(a), StreamName(b)
		if strings.ContainsAny(na, " \t\r\n\f.*>/\\") || (a == b) != (na == nb) {
			t.Fatalf("stream names of %q and %q: %q and %q", a, b, na, nb)
		}
	})
}

func TestSubject(t *testing.T) {
	t.Parallel()
	now := time.Now()
	item := &catalog.Item{Collection: "sensors.v2", ID: "tank 1"}
	job := jobs.NewEvent(&jobs.Job{ID: "0199-a.b", Process: "c:t"}, jobs.EventJobSuccessful, now)
	audit := &catalog.Event{Type: "policy.created", Payload: json.RawMessage(`{}`)}
	odd := &catalog.Event{Type: "weird", Payload: json.RawMessage(`{}`)}
	for _, tc := range []struct {
		name string
		ev   *catalog.Event
		want string
	}{
		{"item", catalog.NewItemEvent(catalog.EventItemStateChanged, item, now), "twinstac.n%2E1.items.sensors%2Ev2.state_changed"},
		{"collection", catalog.NewEvent(catalog.EventCollectionCreated, catalog.CollectionSubject("c*"), now, catalog.EventPayload{Collection: "c*"}), "twinstac.n%2E1.collections.c%2A.created"},
		{"job", job, "twinstac.n%2E1.jobs.successful.0199-a%2Eb"},
		{"audit", audit, "twinstac.n%2E1.policy.created"},
		{"no kind", odd, "twinstac.n%2E1.weird.%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Subject("n.1", tc.ev)
			if got != tc.want {
				t.Fatalf("Subject = %q, want %q", got, tc.want)
			}
			if !server.IsValidLiteralSubject(got) || !server.SubjectMatchesFilter(got, NodeSubjects("n.1")) {
				t.Fatalf("%q is not a literal subject under %s", got, NodeSubjects("n.1"))
			}
		})
	}
}
