// Package catalog owns the STAC side of twinstac: the Item and Collection
// types, the lifecycle of items (draft, published, deprecated, archived,
// deleted), the rules that validate STAC documents, the catalog.Store and
// catalog.BlobStore interfaces, and the Service that applies the rules on
// top of them.
//
// It must not import any adapter: no database driver, no HTTP framework,
// no queue. Adapters (internal/postgres, internal/sqlite, internal/blob,
// openapi) import this package and speak its types.
package catalog
