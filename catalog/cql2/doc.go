// Package cql2 owns the Common Query Language (CQL2, OGC 21-065r2) as the
// catalog understands it: one abstract syntax tree, parsers for the
// CQL2-Text and CQL2-JSON encodings, printers back to both, Check for the
// errors a filter has whatever the data, and Eval, the reference
// semantics of a filter on one feature.
//
// The AST is shared by both encodings so that a filter arriving as text and
// the same filter arriving as JSON are indistinguishable after parsing;
// later layers (SQL translators, the search planner) work on the AST only.
// Expressions nest at most MaxDepth levels: both parsers reject deeper
// filters before recursing that deep.
//
// Errors are *catalog.Error with Code catalog.EINVALID. For CQL2-JSON the
// Pointer is a JSON pointer into the filter ("/args/1"); for CQL2-Text it is
// "filter:<byte offset>". Check points the same way at the node at fault.
//
// Besides the standard library, the package imports catalog (for its error
// type) and pure-Go libraries only (simplefeatures computes the spatial
// predicates). It must not import storage drivers, HTTP frameworks or any
// other project package.
package cql2
