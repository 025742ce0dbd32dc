package sqlite

import (
	"context"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/twinstac/twinstac/catalog"
)

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isBusy reports a lock that busy_timeout did not see released.
func isBusy(err error) bool {
	c := sqliteCode(err) & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// isUnique reports a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports a FOREIGN KEY violation (a missing collection).
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// dbError translates an error of the driver or of database/sql into a
// catalog error. Call sites translate what they can name better first
// (no rows, unique and foreign key violations); the driver's own message
// never reaches a catalog.Error Message, only its Err, for the logs.
func dbError(err error) error {
	var ce *catalog.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err
	case isBusy(err):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database is busy; try again", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database did not answer in time", Err: err}
	case isUnique(err):
		return &catalog.Error{Code: catalog.ECONFLICT, Message: "the object already exists", Err: err}
	}
	return catalog.Internal(err)
}
