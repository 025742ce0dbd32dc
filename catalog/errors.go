package catalog

import (
	"errors"
	"fmt"
)

// Error codes. Every method of the catalog interfaces documents which of
// these it returns; anything else is an internal error.
const (
	EINVALID         = "invalid"             // the request is malformed or breaks a rule
	ENOTFOUND        = "not_found"           // the object does not exist
	ECONFLICT        = "conflict"            // the request clashes with the current state
	EPRECONDITION    = "precondition_failed" // an If-Match did not match
	EGONE            = "gone"                // the object existed and was deleted (tombstone)
	ETOOLARGE        = "too_large"           // a body or upload exceeds its limit
	ETOOMANY         = "too_many_requests"   // a rate limit was hit
	EFORBIDDEN       = "forbidden"           // the caller may not do this
	EUNAUTHENTICATED = "unauthenticated"     // the caller is not known
	EUNAVAILABLE     = "unavailable"         // a dependency (database, blob store) cannot be reached
	EINTERNAL        = "internal"            // a bug or an unexpected failure
)

// Error is the one error type of the domain. Adapters translate driver
// errors into it; the HTTP layer maps Code to a status in one place.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is safe to show to the client.
	Message string
	// Pointer locates the offending member of a request body (a JSON
	// pointer such as "/properties/datetime") or names a parameter
	// ("query.bbox"), when there is one.
	Pointer string
	// Err is the underlying cause, kept for logs; it is never shown.
	Err error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Pointer != "" {
		s += " (at " + e.Pointer + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error that points at a member of the input.
func Invalid(pointer, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Message: fmt.Sprintf(format, args...), Pointer: pointer}
}

// Internal wraps an unexpected failure. Its message is generic; the cause
// is kept for the log.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "internal error", Err: err}
}

// ErrorCode returns the code of err: its own when it is (or wraps) an
// *Error, EINTERNAL otherwise, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}
