package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Dir is a catalog.BlobStore that keeps each blob as one file under a root
// directory.
//
// A key maps to a path by escaping each segment (see escapeSegment). The
// segments before the last name directories; the last one names the file,
// prefixed with "@". Files and directories therefore never share a name,
// so "a" and "a/b" can both hold blobs, as they can in an object store:
//
//	collections/c1/items/i:1/data.tif -> ROOT/collections/c1/items/i%3A1/@data.tif
//
// Uploads in progress live in ROOT/.tmp. No escaped segment begins with
// ".", so no key can name that directory.
type Dir struct {
	root string
	tmp  string
	// mu orders the directories Put creates against the ones Delete and
	// DeletePrefix remove: Put holds it shared from mkdir to rename, the
	// removals hold it exclusively. Processes sharing a root are not
	// covered; for them install retries instead.
	mu sync.RWMutex
}

var _ catalog.BlobStore = (*Dir)(nil)

const (
	// tmpDirName is the directory under the root that holds uploads in
	// progress; the rename that publishes them must stay on one file
	// system, hence not os.TempDir.
	tmpDirName = ".tmp"
	// filePrefix marks blob files; escapeSegment never produces it.
	filePrefix = "@"
	// maxNameLen is the longest file name common file systems accept.
	maxNameLen = 255
	// staleTmpAge is how old a leftover temporary file (from a crash) must
	// be before NewDir removes it; younger ones may belong to another
	// process sharing the root.
	staleTmpAge = 24 * time.Hour
	// chunkSize is how much Put reads between two checks of its context.
	chunkSize = 32 << 10
	// installAttempts bounds the retries of Put's final rename when
	// another process's Delete removes the parent directory it just
	// created.
	installAttempts = 10
)

// NewDir returns a store rooted at root, creating the directory if needed.
// It also removes temporary files that a crash left behind long ago.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: root %q: %w", root, err)
	}
	d := &Dir{root: abs, tmp: filepath.Join(abs, tmpDirName)}
	if err := os.MkdirAll(d.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blob: create root: %w", err)
	}
	d.removeStaleTmp(time.Now().Add(-staleTmpAge))
	return d, nil
}

// Put implements catalog.BlobStore. It streams r into a temporary file,
// hashing as it goes, syncs it and renames it over the blob's path, so a
// concurrent Open sees either the old blob or the new one, never a mix.
// An error from r is returned wrapped (errors.Is finds it); so is the
// context's error when ctx ends during the upload.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, max int64) (catalog.BlobInfo, error) {
	path, err := d.filePath(key)
	if err != nil {
		return catalog.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return catalog.BlobInfo{}, err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if errors.Is(err, fs.ErrNotExist) {
		// Someone removed the tmp directory (or the whole root) under us.
		if err = os.MkdirAll(d.tmp, 0o750); err == nil {
			f, err = os.CreateTemp(d.tmp, "put-*")
		}
	}
	if err != nil {
		return catalog.BlobInfo{}, unavailable(err)
	}
	published := false
	defer func() {
		if !published {
			_ = f.Close() // may already be closed; the file is discarded anyway
			_ = os.Remove(f.Name())
		}
	}()

	info, err := copyHashed(ctx, f, r, max)
	if err != nil {
		return catalog.BlobInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return catalog.BlobInfo{}, unavailable(err)
	}
	if err := f.Close(); err != nil {
		return catalog.BlobInfo{}, unavailable(err)
	}
	if err := d.install(f.Name(), path); err != nil {
		return catalog.BlobInfo{}, unavailable(err)
	}
	published = true
	return info, nil
}

// copyHashed copies r to w, at most max bytes when max > 0, and returns
// the size and SHA-256 of what it copied.
func copyHashed(ctx context.Context, w io.Writer, r io.Reader, max int64) (catalog.BlobInfo, error) {
	h := sha256.New()
	buf := make([]byte, chunkSize)
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return catalog.BlobInfo{}, fmt.Errorf("blob: upload interrupted: %w", err)
		}
		p := buf
		if max > 0 && max-size < int64(len(p)) {
			// Read no further than one byte past the limit: enough to
			// tell "exactly max" from "too large". (max-size+1 in the
			// condition would overflow for max = math.MaxInt64.)
			p = p[:max-size+1]
		}
		n, rerr := r.Read(p)
		if n > 0 {
			size += int64(n)
			if max > 0 && size > max {
				return catalog.BlobInfo{}, catalog.Errorf(catalog.ETOOLARGE, "blob exceeds the limit of %d bytes", max)
			}
			h.Write(p[:n]) // a hash.Hash never returns an error
			if _, err := w.Write(p[:n]); err != nil {
				return catalog.BlobInfo{}, unavailable(err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return catalog.BlobInfo{}, fmt.Errorf("blob: reading upload: %w", rerr)
		}
	}
	info := catalog.BlobInfo{Size: size}
	h.Sum(info.SHA256[:0])
	return info, nil
}

// install renames the finished temporary file tmp to path, creating the
// parent directories, and syncs the directory so the rename survives a
// crash. Deletes in this process wait for it (see Dir.mu); a Delete in
// another process may prune a parent directory between its creation and
// the rename, and install then starts again.
func (d *Dir) install(tmp, path string) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dir := filepath.Dir(path)
	var err error
	for range installAttempts {
		if err = d.mkdirs(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err = os.Rename(tmp, path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				if _, serr := os.Stat(tmp); serr != nil {
					return err // the temporary file itself is gone: no retry helps
				}
				continue
			}
			return err
		}
		if err := syncDir(dir); err != nil && !isMissing(err) {
			return err
		}
		// A missing directory here means a concurrent Delete already
		// removed the new blob; there is nothing left to make durable.
		return nil
	}
	return err
}

// mkdirs is os.MkdirAll for directories under the root, syncing each
// parent in which it creates an entry so that the new path is durable.
func (d *Dir) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir != d.root {
		if err := d.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// Open implements catalog.BlobStore. The returned blob keeps reading the
// version it opened even if a Put replaces it or a Delete removes it.
func (d *Dir) Open(ctx context.Context, key string) (catalog.Blob, error) {
	path, err := d.filePath(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		if isMissing(err) {
			return nil, catalog.Errorf(catalog.ENOTFOUND, "blob %q not found", key)
		}
		return nil, unavailable(err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, unavailable(err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, catalog.Errorf(catalog.ENOTFOUND, "blob %q not found", key)
	}
	return &file{File: f, size: fi.Size(), modTime: fi.ModTime()}, nil
}

// Delete implements catalog.BlobStore. It also removes the directories
// that the deletion leaves empty, up to the root, on a best-effort basis.
func (d *Dir) Delete(ctx context.Context, key string) error {
	path, err := d.filePath(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(path); err != nil && !isMissing(err) {
		return unavailable(err)
	}
	d.prune(filepath.Dir(path))
	return nil
}

// DeletePrefix implements catalog.BlobStore: it removes the directory
// subtree of prefix and the blob stored exactly under prefix, then prunes
// the directories left empty.
func (d *Dir) DeletePrefix(ctx context.Context, prefix string) error {
	key := strings.TrimSuffix(prefix, "/")
	path, err := d.filePath(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := d.dirPath(key)
	d.mu.Lock()
	defer d.mu.Unlock()
	// Another process's Put may add a file while RemoveAll walks the tree,
	// which then fails with "directory not empty"; another pass removes it.
	for attempt := 1; ; attempt++ {
		err = os.RemoveAll(dir)
		if err == nil || attempt == installAttempts || !errors.Is(err, syscall.ENOTEMPTY) {
			break
		}
	}
	if err != nil {
		return unavailable(err)
	}
	if err := os.Remove(path); err != nil && !isMissing(err) {
		return unavailable(err)
	}
	d.prune(filepath.Dir(path))
	return nil
}

// prune removes dir and its ancestors below the root for as long as they
// are empty. Failures are ignored: a leftover empty directory is harmless.
func (d *Dir) prune(dir string) {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// removeStaleTmp deletes temporary files last modified before cutoff.
func (d *Dir) removeStaleTmp(cutoff time.Time) {
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
}

// filePath returns the path of the file that holds the blob under key.
func (d *Dir) filePath(key string) (string, error) {
	segs, err := splitKey(key)
	if err != nil {
		return "", err
	}
	elems := make([]string, 0, len(segs)+1)
	elems = append(elems, d.root)
	for i, s := range segs {
		name := escapeSegment(s)
		if i == len(segs)-1 {
			name = filePrefix + name
		}
		if len(name) > maxNameLen {
			return "", catalog.Errorf(catalog.EINVALID, "blob key %q: segment %d is too long", key, i+1)
		}
		elems = append(elems, name)
	}
	path := filepath.Join(elems...)
	// Escaping already rules out "..", separators and absolute paths; this
	// check keeps a future change to escapeSegment from opening a hole.
	if !strings.HasPrefix(path, d.root+string(filepath.Separator)) {
		return "", catalog.Errorf(catalog.EINVALID, "blob key %q leaves the store", key)
	}
	return path, nil
}

// dirPath returns the path of the directory that holds the blobs under
// the folder key. The key must have passed filePath.
func (d *Dir) dirPath(key string) string {
	segs := strings.Split(key, "/")
	elems := make([]string, 0, len(segs)+1)
	elems = append(elems, d.root)
	for _, s := range segs {
		elems = append(elems, escapeSegment(s))
	}
	return filepath.Join(elems...)
}

// splitKey checks key against the rules of catalog.BlobStore and returns
// its segments.
func splitKey(key string) ([]string, error) {
	invalid := func(why string) error {
		return catalog.Errorf(catalog.EINVALID, "invalid blob key %q: %s", key, why)
	}
	switch {
	case key == "":
		return nil, invalid("empty")
	case strings.HasPrefix(key, "/"):
		return nil, invalid(`starts with "/"`)
	case strings.ContainsRune(key, '\\'):
		return nil, invalid("contains a backslash")
	case strings.ContainsRune(key, 0):
		return nil, invalid("contains a NUL byte")
	}
	segs := strings.Split(key, "/")
	for _, s := range segs {
		switch s {
		case "":
			return nil, invalid("has an empty segment")
		case ".", "..":
			return nil, invalid(`has a "." or ".." segment`)
		}
	}
	return segs, nil
}

// escapeSegment maps a key segment to a file name. Bytes outside
// [A-Za-z0-9._-] become %XX, as does a leading "." (so no name is hidden,
// "." or "..", or clashes with the tmp directory). The mapping is
// one-to-one because "%" itself is escaped.
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isNameByte(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// file is an open blob: the *os.File plus what Stat said when it opened.
type file struct {
	*os.File
	size    int64
	modTime time.Time
}

// Size returns the blob's length in bytes.
func (f *file) Size() int64 { return f.size }

// ModTime returns when the blob was stored.
func (f *file) ModTime() time.Time { return f.modTime }

// syncDir flushes a directory's entries (new files, renames) to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := f.Sync()
	if cerr := f.Close(); serr == nil {
		serr = cerr
	}
	return serr
}

// isMissing reports whether err says that a path does not exist, including
// the case of a path component that is not a directory.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// unavailable wraps a file-system failure; the cause is kept for the log.
func unavailable(err error) error {
	return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "blob store unavailable", Err: err}
}

// Ping checks that the blob folder is there and writable, for readiness
// probes. Codes: EUNAVAILABLE.
func (d *Dir) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(filepath.Join(d.root, tmpDirName), "ping-")
	if err != nil {
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the blob folder is not writable", Err: err}
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Move implements catalog.BlobStore with a rename, which is atomic on one
// file system.
func (d *Dir) Move(ctx context.Context, from, to string) error {
	src, err := d.filePath(from)
	if err != nil {
		return err
	}
	dst, err := d.filePath(to)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		if isMissing(err) {
			return catalog.Errorf(catalog.ENOTFOUND, "blob %q not found", from)
		}
		return unavailable(err)
	}
	if err := d.install(src, dst); err != nil {
		if isMissing(err) {
			return catalog.Errorf(catalog.ENOTFOUND, "blob %q not found", from)
		}
		return unavailable(err)
	}
	d.mu.Lock()
	d.prune(filepath.Dir(src))
	d.mu.Unlock()
	return nil
}
