// Package blobtest holds the contract suite that every catalog.BlobStore
// implementation must pass: the directory store in internal/blob today,
// object stores later. A store's own tests call Run; checks that depend on
// how one implementation lays things out stay with that implementation.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/twinstac/twinstac/catalog"
)

// Run runs the contract suite. newStore is called once per subtest, which
// may run in parallel with others; it must return an empty store and
// release it with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) catalog.BlobStore) {
	t.Helper()

	t.Run("PutOpenRoundTrip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		content := bytes.Repeat([]byte("twin-stac "), 10_000) // several read chunks
		info, err := s.Put(context.Background(), "collections/c1/items/i1/data.bin", bytes.NewReader(content), 0)
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got, want := info.Size, int64(len(content)); got != want {
			t.Fatalf("Put size = %d, want %d", got, want)
		}
		if got, want := info.SHA256, sha256.Sum256(content); got != want {
			t.Fatalf("Put sha256 = %x, want %x", got, want)
		}
		b, err := s.Open(context.Background(), "collections/c1/items/i1/data.bin")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer b.Close()
		if got, want := b.Size(), int64(len(content)); got != want {
			t.Fatalf("Blob.Size = %d, want %d", got, want)
		}
		if b.ModTime().IsZero() {
			t.Fatalf("Blob.ModTime is zero")
		}
		got, err := io.ReadAll(b)
		if err != nil {
			t.Fatalf("read blob: %v", err)
		}
		if !bytes.Equal(got, content) {
			t.Fatalf("blob content differs from what was put (%d bytes read, %d put)", len(got), len(content))
		}
	})

	t.Run("Move", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		put(t, s, "up/tmp-1", "new bytes", 0)
		put(t, s, "final/key", "old bytes", 0)
		if err := s.Move(ctx, "up/tmp-1", "final/key"); err != nil {
			t.Fatalf("Move over an existing blob: %v", err)
		}
		if got := read(t, s, "final/key"); got != "new bytes" {
			t.Fatalf("after Move the target holds %q", got)
		}
		wantMissing(t, s, "up/tmp-1")
		if err := s.Move(ctx, "up/tmp-1", "other"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("Move of a missing blob = %v, want ENOTFOUND", err)
		}
		if err := s.Move(ctx, "final/key", "../escape"); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Fatalf("Move to a bad key = %v, want EINVALID", err)
		}
		if got := read(t, s, "final/key"); got != "new bytes" {
			t.Fatalf("a refused Move changed the source: %q", got)
		}
	})

	t.Run("EmptyBlob", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		info := put(t, s, "empty", "", 0)
		if info.Size != 0 || info.SHA256 != sha256.Sum256(nil) {
			t.Fatalf("Put empty = %+v, want size 0 and the sha256 of nothing", info)
		}
		if got := read(t, s, "empty"); got != "" {
			t.Fatalf("read empty blob = %q, want \"\"", got)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "a/b", "first version, longer than the second", 0)
		info := put(t, s, "a/b", "second", 0)
		if info.Size != 6 {
			t.Fatalf("Put size = %d, want 6", info.Size)
		}
		if got := read(t, s, "a/b"); got != "second" {
			t.Fatalf("after replace, blob = %q, want %q", got, "second")
		}
	})

	t.Run("MaxSize", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tests := []struct {
			name    string
			content string
			max     int64
			want    string // error code, "" for success
		}{
			{name: "exactly max", content: "0123456789", max: 10},
			{name: "one byte over", content: "0123456789A", max: 10, want: catalog.ETOOLARGE},
			{name: "far over", content: strings.Repeat("x", 100_000), max: 10, want: catalog.ETOOLARGE},
			{name: "zero is no limit", content: "0123456789A", max: 0},
			{name: "negative is no limit", content: "0123456789A", max: -1},
			{name: "largest limit", content: "0123456789A", max: math.MaxInt64},
		}
		for i, tt := range tests {
			key := fmt.Sprintf("max/%d", i)
			_, err := s.Put(context.Background(), key, strings.NewReader(tt.content), tt.max)
			if got := catalog.ErrorCode(err); got != tt.want {
				t.Fatalf("%s: Put error code = %q (%v), want %q", tt.name, got, err, tt.want)
			}
			if tt.want == "" {
				if got := read(t, s, key); got != tt.content {
					t.Fatalf("%s: blob = %q, want %q", tt.name, got, tt.content)
				}
			}
		}
	})

	t.Run("TooLargeLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "k/old", "previous", 0)
		big := strings.Repeat("y", 200_000)
		_, err := s.Put(context.Background(), "k/old", strings.NewReader(big), 1000)
		wantCode(t, err, catalog.ETOOLARGE, "Put over an existing blob")
		if got := read(t, s, "k/old"); got != "previous" {
			t.Fatalf("after a rejected Put, blob = %q, want %q", got, "previous")
		}
		_, err = s.Put(context.Background(), "k/new", strings.NewReader(big), 1000)
		wantCode(t, err, catalog.ETOOLARGE, "Put of a new key")
		wantMissing(t, s, "k/new")
	})

	t.Run("FailingReaderLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "k/old", "previous", 0)
		errBroken := errors.New("connection reset by test")
		for _, key := range []string{"k/old", "k/new"} {
			r := &failingReader{data: bytes.Repeat([]byte("z"), 100_000), err: errBroken}
			_, err := s.Put(context.Background(), key, r, 0)
			if !errors.Is(err, errBroken) {
				t.Fatalf("Put %q with a failing reader: error = %v, want one wrapping %v", key, err, errBroken)
			}
		}
		if got := read(t, s, "k/old"); got != "previous" {
			t.Fatalf("after a failed Put, blob = %q, want %q", got, "previous")
		}
		wantMissing(t, s, "k/new")
	})

	t.Run("CancelledContextLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The reader never ends; Put must notice the cancellation between
		// chunks. The limit turns a store that ignores ctx into a failure
		// instead of a hang.
		_, err := s.Put(ctx, "k/cancelled", &cancellingReader{cancel: cancel}, 64<<20)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a context cancelled mid-upload: error = %v, want context.Canceled", err)
		}
		wantMissing(t, s, "k/cancelled")

		_, err = s.Put(ctx, "k/late", strings.NewReader("data"), 0)
		if err == nil {
			t.Fatalf("Put with a cancelled context succeeded")
		}
		wantMissing(t, s, "k/late")
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tests := []struct {
			name     string
			key      string
			prefixOK bool // valid as a DeletePrefix folder ("a/")
		}{
			{name: "empty", key: ""},
			{name: "only slash", key: "/"},
			{name: "leading slash", key: "/a"},
			{name: "trailing slash", key: "a/", prefixOK: true},
			{name: "two trailing slashes", key: "a//"},
			{name: "empty segment", key: "a//b"},
			{name: "dot", key: "."},
			{name: "dot segment", key: "a/./b"},
			{name: "dot dot", key: ".."},
			{name: "dot dot segment", key: "a/../b"},
			{name: "leading dot dot", key: "../a"},
			{name: "trailing dot dot", key: "a/.."},
			{name: "backslash", key: `a\b`},
			{name: "backslash traversal", key: `..\a`},
			{name: "NUL", key: "a\x00b"},
		}
		ctx := context.Background()
		for _, tt := range tests {
			_, err := s.Put(ctx, tt.key, strings.NewReader("x"), 0)
			wantCode(t, err, catalog.EINVALID, tt.name+": Put")
			_, err = s.Open(ctx, tt.key)
			wantCode(t, err, catalog.EINVALID, tt.name+": Open")
			err = s.Delete(ctx, tt.key)
			wantCode(t, err, catalog.EINVALID, tt.name+": Delete")
			err = s.DeletePrefix(ctx, tt.key)
			if tt.prefixOK {
				if err != nil {
					t.Fatalf("%s: DeletePrefix(%q) = %v, want nil", tt.name, tt.key, err)
				}
			} else {
				wantCode(t, err, catalog.EINVALID, tt.name+": DeletePrefix")
			}
		}
	})

	t.Run("OpenMissing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		wantMissing(t, s, "no/such/blob")
		put(t, s, "folder/child", "c", 0)
		wantMissing(t, s, "folder")         // a folder is not a blob
		wantMissing(t, s, "folder/child/x") // nor is a path below a blob
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		put(t, s, "d/e/f", "gone soon", 0)
		put(t, s, "d/e/g", "stays", 0)
		if err := s.Delete(ctx, "d/e/f"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantMissing(t, s, "d/e/f")
		if got := read(t, s, "d/e/g"); got != "stays" {
			t.Fatalf("sibling after Delete = %q, want %q", got, "stays")
		}
		if err := s.Delete(ctx, "d/e/f"); err != nil {
			t.Fatalf("Delete of a deleted blob = %v, want nil", err)
		}
		if err := s.Delete(ctx, "never/was/here"); err != nil {
			t.Fatalf("Delete of a missing blob = %v, want nil", err)
		}
		if err := s.Delete(ctx, "d/e/g"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		put(t, s, "d/e/f", "back", 0) // the emptied folder can be used again
		if got := read(t, s, "d/e/f"); got != "back" {
			t.Fatalf("blob put after Delete = %q, want %q", got, "back")
		}
	})

	t.Run("BlobAndFolderShareAKey", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "k", "blob k", 0)
		put(t, s, "k/child", "blob k/child", 0)
		put(t, s, "m/child", "blob m/child", 0)
		put(t, s, "m", "blob m", 0)
		for _, key := range []string{"k", "k/child", "m", "m/child"} {
			if got, want := read(t, s, key), "blob "+key; got != want {
				t.Fatalf("blob %q = %q, want %q", key, got, want)
			}
		}
		if err := s.Delete(context.Background(), "k"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantMissing(t, s, "k")
		if got := read(t, s, "k/child"); got != "blob k/child" {
			t.Fatalf("blob under a deleted key = %q, want %q", got, "blob k/child")
		}
	})

	t.Run("DeletePrefix", func(t *testing.T) {
		t.Parallel()
		for _, prefix := range []string{"a/b", "a/b/"} {
			s := newStore(t)
			ctx := context.Background()
			gone := []string{"a/b", "a/b/c", "a/b/d/e"}
			kept := []string{"a", "a/b2", "a/b2/c", "a/bc/x", "a/c", "ab/x", "b/x", "x/a/b"}
			for _, key := range append(append([]string{}, gone...), kept...) {
				put(t, s, key, "blob "+key, 0)
			}
			if err := s.DeletePrefix(ctx, prefix); err != nil {
				t.Fatalf("DeletePrefix(%q): %v", prefix, err)
			}
			for _, key := range gone {
				wantMissing(t, s, key)
			}
			for _, key := range kept {
				if got, want := read(t, s, key), "blob "+key; got != want {
					t.Fatalf("after DeletePrefix(%q), blob %q = %q, want %q", prefix, key, got, want)
				}
			}
			if err := s.DeletePrefix(ctx, prefix); err != nil {
				t.Fatalf("DeletePrefix(%q) of an empty folder = %v, want nil", prefix, err)
			}
			if err := s.DeletePrefix(ctx, "no/such/folder"); err != nil {
				t.Fatalf("DeletePrefix of a missing folder = %v, want nil", err)
			}
			put(t, s, "a/b/c", "again", 0)
			if got := read(t, s, "a/b/c"); got != "again" {
				t.Fatalf("blob put after DeletePrefix = %q, want %q", got, "again")
			}
		}
	})

	t.Run("Seek", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		content := make([]byte, 1000)
		for i := range content {
			content[i] = byte(i * 7)
		}
		put(t, s, "ranges", string(content), 0)
		b, err := s.Open(context.Background(), "ranges")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer b.Close()

		if pos, err := b.Seek(100, io.SeekStart); err != nil || pos != 100 {
			t.Fatalf("Seek(100, start) = %d, %v; want 100, nil", pos, err)
		}
		part := make([]byte, 10)
		if _, err := io.ReadFull(b, part); err != nil {
			t.Fatalf("read after Seek: %v", err)
		}
		if !bytes.Equal(part, content[100:110]) {
			t.Fatalf("bytes 100-109 = %v, want %v", part, content[100:110])
		}
		if pos, err := b.Seek(5, io.SeekCurrent); err != nil || pos != 115 {
			t.Fatalf("Seek(5, current) = %d, %v; want 115, nil", pos, err)
		}
		if _, err := io.ReadFull(b, part[:1]); err != nil || part[0] != content[115] {
			t.Fatalf("byte 115 = %d, %v; want %d", part[0], err, content[115])
		}
		if pos, err := b.Seek(-5, io.SeekEnd); err != nil || pos != 995 {
			t.Fatalf("Seek(-5, end) = %d, %v; want 995, nil", pos, err)
		}
		tail, err := io.ReadAll(b)
		if err != nil {
			t.Fatalf("read tail: %v", err)
		}
		if !bytes.Equal(tail, content[995:]) {
			t.Fatalf("last 5 bytes = %v, want %v", tail, content[995:])
		}
		if _, err := b.Seek(0, io.SeekStart); err != nil {
			t.Fatalf("Seek(0, start): %v", err)
		}
		all, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(all, content) {
			t.Fatalf("reading again from the start gave %d bytes (%v), want the whole blob", len(all), err)
		}
	})

	t.Run("ConcurrentPutsSameKey", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const writers = 8
		infos := make([]catalog.BlobInfo, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			// Each writer sends a different byte and a different length,
			// in small reads, so that mixed or truncated blobs show.
			content := bytes.Repeat([]byte{byte('a' + i)}, 150_000+1_000*i)
			wg.Go(func() {
				<-start
				info, err := s.Put(context.Background(), "shared/key", &smallReader{data: content}, 0)
				if err != nil {
					t.Errorf("writer %d: Put: %v", i, err)
				}
				infos[i] = info
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		got := []byte(read(t, s, "shared/key"))
		if len(got) == 0 {
			t.Fatalf("blob is empty after concurrent Puts")
		}
		i := int(got[0] - 'a')
		if i < 0 || i >= writers {
			t.Fatalf("blob starts with %q, which no writer sent", got[0])
		}
		want := bytes.Repeat([]byte{got[0]}, 150_000+1_000*i)
		if !bytes.Equal(got, want) {
			t.Fatalf("blob is not writer %d's complete upload: %d bytes, want %d of %q", i, len(got), len(want), got[0])
		}
		if sum := sha256.Sum256(got); infos[i].SHA256 != sum {
			t.Fatalf("writer %d's Put returned sha256 %x, the blob has %x", i, infos[i].SHA256, sum)
		}
	})

	t.Run("ConcurrentPutAndDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// Deleting a blob may tidy up its folder while another Put is
		// filling the same folder; neither may fail because of the other.
		const rounds = 50
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				<-start
				for range rounds {
					if _, err := s.Put(context.Background(), "f/g/h", strings.NewReader("complete"), 0); err != nil {
						t.Errorf("putter %d: Put: %v", i, err)
						return
					}
				}
			})
			wg.Go(func() {
				<-start
				for range rounds {
					var err error
					if i%2 == 0 {
						err = s.Delete(context.Background(), "f/g/h")
					} else {
						err = s.DeletePrefix(context.Background(), "f")
					}
					if err != nil {
						t.Errorf("deleter %d: %v", i, err)
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		b, err := s.Open(context.Background(), "f/g/h")
		switch catalog.ErrorCode(err) {
		case catalog.ENOTFOUND:
		case "":
			b.Close()
			if got := read(t, s, "f/g/h"); got != "complete" {
				t.Fatalf("blob after concurrent Put and Delete = %q, want %q", got, "complete")
			}
		default:
			t.Fatalf("Open after concurrent Put and Delete: %v", err)
		}
	})

	t.Run("OddCharactersInKeys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// Keys that differ only in how a naive escaping would spell them
		// must stay distinct.
		keys := []string{
			"items/x:y", "items/x%3Ay", "items/x%3ay",
			"items/a b", "items/a%20b", "items/a+b",
			"items/ü", "items/u\u0308", "items/%C3%BC",
			"items/%41", "items/A", "items/a", "items/%",
			"items/.hidden", "items/%2Ehidden", "items/...", "items/.tmp", ".tmp/x",
			"items/@x", "items/x@", "items/~x",
			"items/q?a=1&b=2#frag", "items/tab\there", "items/line\nbreak",
			"x:y/a b/ü/日本語.tif",
		}
		for _, key := range keys {
			put(t, s, key, "content of "+key, 0)
		}
		for _, key := range keys {
			if got, want := read(t, s, key), "content of "+key; got != want {
				t.Fatalf("blob %q = %q, want %q", key, got, want)
			}
		}
		if err := s.DeletePrefix(context.Background(), "x:y/a b"); err != nil {
			t.Fatalf("DeletePrefix: %v", err)
		}
		wantMissing(t, s, "x:y/a b/ü/日本語.tif")
	})
}

// put stores content under key and fails the test on error.
func put(t *testing.T, s catalog.BlobStore, key, content string, max int64) catalog.BlobInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, strings.NewReader(content), max)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

// read returns the whole blob under key and checks that Size agrees.
func read(t *testing.T, s catalog.BlobStore, key string) string {
	t.Helper()
	b, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if got, want := b.Size(), int64(len(data)); got != want {
		t.Fatalf("Open(%q).Size() = %d, but %d bytes were read", key, got, want)
	}
	return string(data)
}

// wantMissing checks that Open reports ENOTFOUND for key.
func wantMissing(t *testing.T, s catalog.BlobStore, key string) {
	t.Helper()
	b, err := s.Open(context.Background(), key)
	if err == nil {
		b.Close()
	}
	wantCode(t, err, catalog.ENOTFOUND, fmt.Sprintf("Open(%q)", key))
}

// wantCode checks that err carries the catalog error code want.
func wantCode(t *testing.T, err error, want, what string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != want {
		t.Fatalf("%s: error = %v (code %q), want code %q", what, err, got, want)
	}
}

// failingReader yields data, then fails with err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// cancellingReader cancels its context on the first Read and never ends.
type cancellingReader struct {
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	r.cancel()
	for i := range p {
		p[i] = 'c'
	}
	return len(p), nil
}

// smallReader yields data at most 4 KiB per Read, so that concurrent
// uploads interleave.
type smallReader struct {
	data []byte
}

func (r *smallReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), 4<<10)]
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
