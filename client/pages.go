package client

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"maps"
	"net/http"
)

// pageLink is a link of a page, as every listing writes it: a POST
// search's next link carries the method, the body and whether to merge
// it into the request that made the page.
type pageLink struct {
	Rel    string         `json:"rel"`
	Href   string         `json:"href"`
	Method string         `json:"method"`
	Body   map[string]any `json:"body"`
	Merge  bool           `json:"merge"`
}

// pages yields the elements of a listing, page after page, following
// the next links from the answer to first; elems reads a page's
// elements. It stops at the first error, which it yields.
func pages[T any](a *API, first *http.Request, firstBody map[string]any, elems func([]byte) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		req, body := first, firstBody
		for req != nil {
			_, raw, err := a.do(req)
			if err != nil {
				yield(zero, err)
				return
			}
			list, err := elems(raw)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, x := range list {
				if !yield(x, nil) {
					return
				}
			}
			if req, body, err = a.nextPage(req, body, raw); err != nil {
				yield(zero, err)
				return
			}
		}
	}
}

// nextPage makes the request of a page's next link (nil: the last page).
func (a *API) nextPage(prev *http.Request, prevBody map[string]any, raw []byte) (*http.Request, map[string]any, error) {
	var page struct {
		Links []pageLink `json:"links"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, nil, err
	}
	for _, l := range page.Links {
		if l.Rel != "next" {
			continue
		}
		method := l.Method
		if method == "" {
			method = http.MethodGet
		}
		if method == http.MethodGet {
			req, err := a.newRequest(prev.Context(), method, l.Href, nil)
			return req, nil, err
		}
		body := l.Body
		if l.Merge {
			body = maps.Clone(prevBody)
			if body == nil {
				body = map[string]any{}
			}
			maps.Copy(body, l.Body)
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		req, err := a.newRequest(prev.Context(), method, l.Href, bytes.NewReader(b))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		return req, body, nil
	}
	return nil, nil, nil
}

// Doc is an element of a listing: the JSON the server wrote, which keeps
// what the typed value leaves out (null members such as an item's
// "datetime" with a time range, members this client does not know), and
// the typed value.
type Doc[T any] struct {
	Raw   json.RawMessage
	Value T
}

// listed reads the elements of a page's array member field.
func listed[T any](field string) func([]byte) ([]Doc[T], error) {
	return func(raw []byte) ([]Doc[T], error) {
		var page map[string]json.RawMessage
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, err
		}
		var elems []json.RawMessage
		if r, ok := page[field]; ok {
			if err := json.Unmarshal(r, &elems); err != nil {
				return nil, err
			}
		}
		out := make([]Doc[T], len(elems))
		for i, e := range elems {
			out[i].Raw = e
			if err := json.Unmarshal(e, &out[i].Value); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// values yields the typed values of a listing.
func values[T any](docs iter.Seq2[Doc[T], error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for d, err := range docs {
			if !yield(d.Value, err) {
				return
			}
		}
	}
}

// Collections yields the collections the caller may read, following the
// pages.
func (a *API) Collections(ctx context.Context, params *GetCollectionsParams) iter.Seq2[Collection, error] {
	return values(a.CollectionDocs(ctx, params))
}

// CollectionDocs is Collections with each collection's JSON.
func (a *API) CollectionDocs(ctx context.Context, params *GetCollectionsParams) iter.Seq2[Doc[Collection], error] {
	req, err := NewGetCollectionsRequest(a.Server, params)
	if err != nil {
		return failed[Doc[Collection]](err)
	}
	return pages(a, req.WithContext(ctx), nil, listed[Collection]("collections"))
}

// Items yields the items of a collection that params select, following
// the pages.
func (a *API) Items(ctx context.Context, collection string, params *GetItemsParams) iter.Seq2[ItemProjection, error] {
	return values(a.ItemDocs(ctx, collection, params))
}

// ItemDocs is Items with each item's JSON.
func (a *API) ItemDocs(ctx context.Context, collection string, params *GetItemsParams) iter.Seq2[Doc[ItemProjection], error] {
	req, err := NewGetItemsRequest(a.Server, collection, params)
	if err != nil {
		return failed[Doc[ItemProjection]](err)
	}
	return pages(a, req.WithContext(ctx), nil, listed[ItemProjection]("features"))
}

// Search yields the items a POST /search with body matches, following
// the pages (each next link's body merged into the search, as the STAC
// API says).
func (a *API) Search(ctx context.Context, body PostItemSearchJSONRequestBody) iter.Seq2[ItemProjection, error] {
	return values(a.SearchDocs(ctx, body))
}

// SearchDocs is Search with each item's JSON.
func (a *API) SearchDocs(ctx context.Context, body PostItemSearchJSONRequestBody) iter.Seq2[Doc[ItemProjection], error] {
	req, err := NewPostItemSearchRequest(a.Server, body)
	if err != nil {
		return failed[Doc[ItemProjection]](err)
	}
	var asMap map[string]any
	b, err := json.Marshal(body)
	if err == nil {
		err = json.Unmarshal(b, &asMap)
	}
	if err != nil {
		return failed[Doc[ItemProjection]](err)
	}
	return pages(a, req.WithContext(ctx), asMap, listed[ItemProjection]("features"))
}

// Jobs yields the jobs params select that the caller may see, newest
// first, following the pages.
func (a *API) Jobs(ctx context.Context, params *GetJobsParams) iter.Seq2[StatusInfo, error] {
	return values(a.JobDocs(ctx, params))
}

// JobDocs is Jobs with each job's JSON.
func (a *API) JobDocs(ctx context.Context, params *GetJobsParams) iter.Seq2[Doc[StatusInfo], error] {
	req, err := NewGetJobsRequest(a.Server, params)
	if err != nil {
		return failed[Doc[StatusInfo]](err)
	}
	return pages(a, req.WithContext(ctx), nil, listed[StatusInfo]("jobs"))
}

// failed yields err alone.
func failed[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}
