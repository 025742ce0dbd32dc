package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twinstac/twinstac/catalog"
)

// SQLSTATE codes the store reacts to.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeCheckViolation       = "23514" // also "no partition of relation found for row"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03" // lock_timeout
	codeQueryCanceled        = "57014" // statement_timeout, or a cancelled request
	codeUndefinedTable       = "42P01"
	codeCardinalityViolation = "21000" // ON CONFLICT DO UPDATE hit one row twice
)

// pgCode returns the SQLSTATE of a server error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports a failure that running the transaction again can
// cure: a serialization failure or a deadlock.
func retryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// unreachable reports an error that says the database cannot be reached
// or cannot serve now, rather than that the request was wrong.
func unreachable(err error) bool {
	var (
		ce  *pgconn.ConnectError
		ne  net.Error
		ope *net.OpError
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.As(err, &ope),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.Timeout(err):
		return true
	}
	c := pgCode(err)
	switch {
	case strings.HasPrefix(c, "08"): // connection exception
		return true
	case strings.HasPrefix(c, "53"): // insufficient resources: too many connections, out of memory or disk
		return true
	case c == "57P01", c == "57P02", c == "57P03": // admin or crash shutdown, cannot connect now
		return true
	}
	return false
}

// dbError translates an error of pgx or of the server into a catalog
// error. Call sites translate first what they can name better (no rows,
// unique violations); the driver's message only ever goes into Err, for
// the logs, never into Message.
func dbError(err error) error {
	var ce *catalog.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err
	case retryable(err):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database is busy with concurrent changes; try again", Err: err}
	case pgCode(err) == codeLockNotAvailable:
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database is busy; try again", Err: err}
	case pgCode(err) == codeQueryCanceled, errors.Is(err, context.DeadlineExceeded):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database did not answer in time", Err: err}
	case errors.Is(err, context.Canceled):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the request was cancelled before the database answered", Err: err}
	case unreachable(err):
		return &catalog.Error{Code: catalog.EUNAVAILABLE, Message: "the database is unavailable", Err: err}
	case pgCode(err) == codeUniqueViolation:
		return &catalog.Error{Code: catalog.ECONFLICT, Message: "the object already exists", Err: err}
	}
	return catalog.Internal(err)
}

// noPartition reports a row that no partition of items takes: its
// collection has no partition (any more).
func noPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeCheckViolation && pe.ConstraintName == ""
}

// isNoRows reports pgx's "no rows in result set".
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
