// Package cql2 owns the Common Query Language (CQL2, OGC 21-065r2) as the
// catalog understands it: one abstract syntax tree, parsers for the
// CQL2-Text and CQL2-JSON encodings, and printers back to both.
//
// The AST is shared by both encodings so that a filter arriving as text and
// the same filter arriving as JSON are indistinguishable after parsing;
// later layers (an evaluator, SQL translators) work on the AST only.
//
// Errors are *catalog.Error with Code catalog.EINVALID. For CQL2-JSON the
// Pointer is a JSON pointer into the filter ("/args/1"); for CQL2-Text it is
// "filter:<byte offset>".
//
// The package imports only the standard library and catalog (for its error
// type). It must not import storage drivers, HTTP frameworks or any other
// project package.
package cql2
