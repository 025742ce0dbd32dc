package blob_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/blob"
	"github.com/twinstac/twinstac/internal/blob/blobtest"
)

func TestDir(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) catalog.BlobStore {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatalf("NewDir: %v", err)
		}
		return d
	})
}

// setup returns a store whose root is a fresh directory "store" inside
// parent, so that tests can see whether anything lands beside the root.
func setup(t *testing.T) (d *blob.Dir, parent, root string) {
	t.Helper()
	parent = t.TempDir()
	root = filepath.Join(parent, "store")
	d, err := blob.NewDir(root)
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	return d, parent, root
}

func TestDirKeysStayUnderRoot(t *testing.T) {
	t.Parallel()
	d, parent, root := setup(t)
	ctx := context.Background()

	rejected := []string{
		"../escape", "a/../../escape", "..", "../../etc/passwd",
		`..\escape`, `a\..\..\escape`, "/etc/escape", "a/b/../../../escape",
	}
	for _, key := range rejected {
		_, err := d.Put(ctx, key, strings.NewReader("x"), 0)
		if got := catalog.ErrorCode(err); got != catalog.EINVALID {
			t.Fatalf("Put(%q) error code = %q (%v), want %q", key, got, err, catalog.EINVALID)
		}
		if err := d.DeletePrefix(ctx, key); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Fatalf("DeletePrefix(%q) = %v, want code %q", key, err, catalog.EINVALID)
		}
	}
	// Valid keys that merely look like traversal must land inside the root.
	accepted := []string{"...", "..a", "a..", ".tmp", ".tmp/x", "%2E%2E", "..%2F..%2Fescape", "C:", "a/.../b"}
	for _, key := range accepted {
		if _, err := d.Put(ctx, key, strings.NewReader("x"), 0); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}

	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatalf("read parent: %v", err)
	}
	if len(entries) != 1 || entries[0].Name() != "store" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("parent of the root holds %q, want only \"store\"", names)
	}

	// Every name the store created is filename-safe, and the files count
	// matches the accepted keys: no two keys share a file.
	safe := regexp.MustCompile(`^@?[A-Za-z0-9_%-][A-Za-z0-9._%-]*$`)
	files := 0
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		if e.IsDir() && path == filepath.Join(root, ".tmp") {
			return filepath.SkipDir
		}
		if !safe.MatchString(e.Name()) {
			t.Errorf("unsafe name %q at %s", e.Name(), path)
		}
		if !e.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk root: %v", err)
	}
	if files != len(accepted) {
		t.Fatalf("root holds %d files, want %d", files, len(accepted))
	}
}

func TestDirLeavesNoTemporaryFiles(t *testing.T) {
	t.Parallel()
	d, _, root := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := d.Put(context.Background(), "a/b", strings.NewReader("too large"), 3); err == nil {
		t.Fatalf("Put over the limit succeeded")
	}
	broken := errors.New("broken")
	if _, err := d.Put(context.Background(), "a/b", &brokenReader{err: broken}, 0); !errors.Is(err, broken) {
		t.Fatalf("Put with a failing reader = %v, want %v", err, broken)
	}
	if _, err := d.Put(ctx, "a/b", strings.NewReader("x"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := d.Put(context.Background(), "a/c", strings.NewReader("ok"), 0); err != nil {
		t.Fatalf("Put: %v", err)
	}

	entries, err := os.ReadDir(filepath.Join(root, ".tmp"))
	if err != nil {
		t.Fatalf("read tmp dir: %v", err)
	}
	if len(entries) != 0 {
		t.Fatalf("tmp dir holds %d entries after the Puts ended, want 0", len(entries))
	}
	if _, err := os.Stat(filepath.Join(root, "a", "@b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("failed Puts left a file for a/b (stat error %v)", err)
	}
}

func TestDirDeleteRemovesEmptyDirectories(t *testing.T) {
	t.Parallel()
	d, _, root := setup(t)
	ctx := context.Background()
	for _, key := range []string{"a/b/c/d", "a/b/e", "p/q/r"} {
		if _, err := d.Put(ctx, key, strings.NewReader("x"), 0); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	if err := d.Delete(ctx, "a/b/c/d"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a", "b", "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("emptied directory a/b/c still exists (stat error %v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a", "b", "@e")); err != nil {
		t.Fatalf("sibling blob a/b/e: %v", err)
	}
	if err := d.DeletePrefix(ctx, "p/q"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if err := d.Delete(ctx, "a/b/e"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("read root: %v", err)
	}
	if len(entries) != 1 || entries[0].Name() != ".tmp" {
		t.Fatalf("root holds %d entries after every blob was deleted, want only .tmp", len(entries))
	}
}

func TestNewDirRemovesStaleTemporaryFiles(t *testing.T) {
	t.Parallel()
	_, _, root := setup(t)
	stale := filepath.Join(root, ".tmp", "put-stale")
	fresh := filepath.Join(root, ".tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatalf("chtimes: %v", err)
	}
	if _, err := blob.NewDir(root); err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary file survived NewDir (stat error %v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh temporary file (maybe another process's upload) was removed: %v", err)
	}
}

// brokenReader yields a little data, then fails.
type brokenReader struct {
	sent bool
	err  error
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, r.err
	}
	r.sent = true
	return copy(p, "partial"), nil
}

func TestPing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := blob.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a writable folder: %v", err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(t.Context()); catalog.ErrorCode(err) != catalog.EUNAVAILABLE {
		t.Fatalf("Ping on a removed folder = %v, want EUNAVAILABLE", err)
	}
}
