// Package sqlite owns the embedded SQLite persistence of twinstac: Store
// implements catalog.Store on modernc.org/sqlite (pure Go, no cgo) through
// database/sql. It holds the schema as embedded, numbered, forward-only
// migrations, the SQL of every query, and the translation of driver
// errors into catalog error codes.
//
// It is the store `twinstac serve` uses when no PostgreSQL URL is given.
// It speaks catalog types only and knows nothing of HTTP: it must not
// import net/http, huma or the openapi package. Its behaviour is checked
// by the shared contract suite in internal/storetest.
package sqlite
