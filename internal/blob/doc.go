// Package blob owns the bytes of assets on local disk: Dir implements
// catalog.BlobStore over a directory tree, writing each upload to a
// temporary file and renaming it into place only once it is complete, so
// readers never see a partial blob.
//
// The package speaks catalog types only. It must not import HTTP packages
// (net/http, huma) or database packages (pgx, SQLite): handlers and stores
// call it through catalog.BlobStore. Its contract tests live in
// internal/blob/blobtest and are shared with every other BlobStore.
package blob
