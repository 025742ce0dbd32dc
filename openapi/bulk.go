package openapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

type bulkInput struct {
	CollectionPath
	Mode  string `query:"mode" enum:"insert,upsert" default:"insert" doc:"insert: an existing id fails the whole load with 409; upsert: existing drafts are replaced (published items still fail it)."`
	State string `query:"state" enum:"draft,published" default:"draft" doc:"The state the loaded items start in."`
	StreamBody
}

// BulkResult counts what a bulk load wrote.
type BulkResult struct {
	Inserted int `json:"inserted" doc:"Items created."`
	Updated  int `json:"updated" doc:"Existing drafts replaced (upsert mode)."`
}

type bulkOutput struct {
	Body BulkResult
}

func (s *Server) registerBulk() {
	op := s.operation("bulkLoadItems", http.MethodPost, "/collections/{collectionId}/bulk_items", "Items",
		"Load many items",
		"Loads items into a collection in one transaction, all or nothing: NDJSON (one item per line, `application/x-ndjson`) or JSON (an array of items or a FeatureCollection). The body is streamed, so a load may be far larger than the JSON body limit; each item must fit in it. Every item is validated like a single create, and each gets its own item.created event.",
		http.StatusOK, 400, 404, 409, 413, 403)
	huma.Register(s.api, op, func(ctx context.Context, in *bulkInput) (*bulkOutput, error) {
		mt, _, _ := mime.ParseMediaType(in.contentType)
		var next func() ([]byte, string, error)
		switch mt {
		case "application/x-ndjson", "application/ndjson", "application/geo+json-seq":
			next = ndjsonReader(in.body, s.cfg.MaxBodyBytes)
		case "application/json", "application/geo+json", "":
			next = jsonArrayReader(in.body, s.cfg.MaxBodyBytes)
		default:
			return nil, catalog.Invalid("header.Content-Type", "send application/x-ndjson or application/json, not %q", in.contentType)
		}
		state := catalog.State(in.State)
		mode := catalog.BulkMode(in.Mode)
		all := access.ItemResource(in.CollectionID, "*")
		coll, err := s.writableCollection(ctx, in.CollectionID, access.ActionCreate, all)
		if err != nil {
			return nil, err
		}
		if mode == catalog.BulkUpsert {
			if err := s.require(ctx, coll, access.ActionUpdate, all); err != nil {
				return nil, err
			}
		}
		if state == catalog.StatePublished {
			if err := s.require(ctx, coll, access.ActionPublish, all); err != nil {
				return nil, err
			}
		}
		seen := 0
		res, err := s.deps.Catalog.BulkLoad(ctx, in.CollectionID, mode, func() (*catalog.Item, error) {
			raw, where, err := next()
			if err != nil {
				return nil, err
			}
			seen++
			it, err := s.deps.Catalog.PrepareBulkItem(in.CollectionID, raw, state, catalog.CreateOptions{MaySetOwner: CallerOf(ctx).IsAdmin()})
			if err != nil {
				var ce *catalog.Error
				if errors.As(err, &ce) {
					return nil, &catalog.Error{Code: ce.Code, Message: where + ": " + ce.Message, Pointer: ce.Pointer}
				}
				return nil, err
			}
			return it, nil
		})
		if err != nil {
			return nil, err
		}
		if seen == 0 {
			return nil, catalog.Invalid("", "the body holds no items")
		}
		return &bulkOutput{Body: BulkResult{Inserted: res.Inserted, Updated: res.Updated}}, nil
	})
	// Documented after registration: a JSON schema on the operation would
	// make huma read the whole body before the handler streams it.
	s.documentBody(op, &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		"application/x-ndjson": {Schema: &huma.Schema{Type: "string", Description: "One STAC item per line."}},
		"application/json":     {Schema: &huma.Schema{OneOf: []*huma.Schema{ref("ItemCollectionInput"), {Type: "array", Items: ref("ItemInput")}}}},
	}})
}

// ndjsonReader yields the non-empty lines of r; a line longer than max is
// an ETOOLARGE error.
func ndjsonReader(r io.Reader, max int64) func() ([]byte, string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), int(max))
	line := 0
	return func() ([]byte, string, error) {
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			return b, "line " + strconv.Itoa(line), nil
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, "", catalog.Errorf(catalog.ETOOLARGE, "line %d is longer than the item size limit of %d bytes", line+1, max)
			}
			return nil, "", readError(err)
		}
		return nil, "", io.EOF
	}
}

// jsonArrayReader yields the elements of a JSON array, or of the features
// array of a FeatureCollection, one at a time.
func jsonArrayReader(r io.Reader, max int64) func() ([]byte, string, error) {
	dec := json.NewDecoder(r)
	started, done := false, false
	i := -1
	prefix := "/"
	start := func() error {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		switch tok {
		case json.Delim('['):
			return nil
		case json.Delim('{'):
			prefix = "/features/"
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return jsonError(err)
				}
				if key == "features" {
					if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
						return catalog.Invalid("/features", "features must be an array of items")
					}
					return nil
				}
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return jsonError(err)
				}
			}
			return catalog.Invalid("/features", "the FeatureCollection has no features array")
		}
		return catalog.Invalid("", "the body must be an array of items or a FeatureCollection")
	}
	return func() ([]byte, string, error) {
		if done {
			return nil, "", io.EOF
		}
		if !started {
			started = true
			if err := start(); err != nil {
				return nil, "", err
			}
		}
		if !dec.More() {
			done = true
			return nil, "", io.EOF
		}
		i++
		var raw json.RawMessage
		before := dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			return nil, "", jsonError(err)
		}
		if dec.InputOffset()-before > max {
			return nil, "", catalog.Errorf(catalog.ETOOLARGE, "item %s%d is larger than the item size limit of %d bytes", prefix, i, max)
		}
		return raw, fmt.Sprintf("item %s%d", prefix, i), nil
	}
}

func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return catalog.Invalid("", "the body is not valid JSON: %s at byte %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return catalog.Invalid("", "the body ends in the middle of a JSON value")
	}
	return readError(err)
}

// readError classifies a failure to read the request body.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return catalog.Errorf(catalog.ETOOLARGE, "the body exceeds %d bytes", mbe.Limit)
	}
	return catalog.Invalid("", "reading the body failed: %s", err)
}
