package catalog

import (
	"context"
	"io"
	"time"
)

// BlobStore keeps the bytes of assets. Keys are slash-separated paths of
// non-empty segments; no segment is "." or "..". Implementations: a local
// directory (internal/blob) and, later, S3-compatible object stores.
type BlobStore interface {
	// Put stores what it reads from r under key, replacing any blob there.
	// The new blob becomes visible only once all of r was read without
	// error and within max bytes (max <= 0: no limit); otherwise nothing
	// changes and no partial blob is left behind.
	// Codes: EINVALID (bad key), ETOOLARGE (more than max bytes),
	// EUNAVAILABLE.
	Put(ctx context.Context, key string, r io.Reader, max int64) (BlobInfo, error)
	// Open returns a reader over the blob stored under key.
	// Codes: EINVALID (bad key), ENOTFOUND.
	Open(ctx context.Context, key string) (Blob, error)
	// Move renames the blob under from to to, replacing any blob there,
	// without copying bytes through the caller (S3: a server-side copy
	// and delete). Codes: EINVALID (bad key), ENOTFOUND, EUNAVAILABLE.
	Move(ctx context.Context, from, to string) error
	// Delete removes the blob under key; a missing blob is not an error.
	// Codes: EINVALID (bad key), EUNAVAILABLE.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every blob whose key lies under the folder
	// prefix (a key, or a key followed by "/"). Codes: EINVALID, EUNAVAILABLE.
	DeletePrefix(ctx context.Context, prefix string) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Size   int64
	SHA256 [32]byte
}

// Blob is an open stored blob. Seek lets HTTP range requests read parts.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}
