// Package postgres owns all PostgreSQL persistence of twinstac: the
// catalog.Store on PostgreSQL 15+ with PostGIS through pgx, its embedded,
// numbered, forward-only migrations, and the outbox that events are
// written to in the same transaction as the change they describe.
//
// Items live in a table partitioned by collection, one partition per
// collection, so that a collection's listing, bulk load and deletion touch
// that collection's table and indexes only. Bulk loads stream items with
// binary COPY.
//
// The package may import pgx and the domain packages (catalog). It must
// know nothing of HTTP (net/http handlers, huma): the openapi package
// reaches it through the catalog interfaces only. Driver errors are
// translated here into catalog errors; no raw driver message leaves the
// package as a client-facing message.
package postgres
