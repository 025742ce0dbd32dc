package openapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/twinstac/twinstac/catalog"
)

const (
	mediaGeoJSON = "application/geo+json"
	mediaJSON    = "application/json"
)

// baseURL returns the absolute URL the API is reached at, without a
// trailing slash: the configured public URL, or one built from the request
// (honouring X-Forwarded-Proto and X-Forwarded-Host from a proxy).
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ \t") {
		host = h
	}
	return scheme + "://" + host
}

func link(rel, href, typ string) catalog.Document {
	d := catalog.Document{}
	d.Set("rel", rel)
	d.Set("href", href)
	if typ != "" {
		d.Set("type", typ)
	}
	return d
}

func titledLink(rel, href, typ, title string) catalog.Document {
	d := link(rel, href, typ)
	d.Set("title", title)
	return d
}

func collectionURL(base, id string) string { return base + "/collections/" + url.PathEscape(id) }

// renderItem returns the JSON of an item as served: its own links plus
// self, parent, collection and root, with server paths made absolute.
func renderItem(base string, it *catalog.Item) (json.RawMessage, error) {
	if it.Deleted() {
		return renderTombstone(base, it)
	}
	d := it.Doc.Clone()
	buf := make([]byte, 0, 4096)
	appendList := func(list []catalog.Document) json.RawMessage {
		start := len(buf)
		buf = append(buf, '[')
		for i, l := range list {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = catalog.AppendDocument(buf, l, "", nil)
		}
		buf = append(buf, ']')
		return buf[start:len(buf):len(buf)]
	}
	// The server's links follow the item's own. Links and assets that
	// hold server paths (relative hrefs the server wrote) get the base;
	// documents without any are copied as they are.
	coll := collectionURL(base, it.Collection)
	own := []catalog.Document{
		link("self", base+catalog.ItemPath(it.Collection, it.ID), mediaGeoJSON),
		link("parent", coll, mediaJSON),
		link("collection", coll, mediaJSON),
		link("root", base+"/", mediaJSON),
	}
	rawLinks := bytes.TrimSpace(d["links"])
	if bytes.Contains(rawLinks, serverPath) {
		var links []catalog.Document
		for _, l := range it.Links() {
			rel, _, _ := l.String("", "rel")
			if href, _, _ := l.String("", "href"); strings.HasPrefix(href, "/collections/") && (rel == "latest-version" || rel == "successor-version") {
				l.Set("href", base+href)
			}
			links = append(links, l)
		}
		d["links"] = appendList(append(links, own...))
	} else {
		start := len(buf)
		buf = append(buf, '[')
		if len(rawLinks) >= 2 && rawLinks[0] == '[' {
			if inner := bytes.TrimSpace(rawLinks[1 : len(rawLinks)-1]); len(inner) > 0 {
				buf = append(buf, inner...)
				buf = append(buf, ',')
			}
		}
		for i, l := range own {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = catalog.AppendDocument(buf, l, "", nil)
		}
		buf = append(buf, ']')
		d["links"] = buf[start:len(buf):len(buf)]
	}
	rawAssets := bytes.TrimSpace(d["assets"])
	switch {
	case len(rawAssets) == 0 || string(rawAssets) == "null":
		d["assets"] = json.RawMessage("{}")
	case bytes.Contains(rawAssets, serverPath):
		assets := it.Assets()
		for k, a := range assets {
			if href, _, _ := a.String("", "href"); href == catalog.AssetPath(it.Collection, it.ID, k) {
				a.Set("href", base+href)
			}
		}
		start := len(buf)
		buf = catalog.AppendDocument(buf, documentOf(assets), "", nil)
		d["assets"] = buf[start:len(buf):len(buf)]
	}
	return catalog.AppendDocument(make([]byte, 0, len(buf)+2048), d, "properties", it.Props), nil
}

// serverPath starts the relative hrefs the server writes into documents.
var serverPath = []byte(`"/collections/`)

// documentOf turns a map of member documents into a document.
func documentOf(m map[string]catalog.Document) catalog.Document {
	out := make(catalog.Document, len(m))
	for k, v := range m {
		out[k] = catalog.AppendDocument(nil, v, "", nil)
	}
	return out
}

// renderTombstone renders a deleted item as a minimal feature: its id,
// collection, state and the time of deletion, and no content.
func renderTombstone(base string, it *catalog.Item) (json.RawMessage, error) {
	coll := collectionURL(base, it.Collection)
	return json.Marshal(map[string]any{
		"type": "Feature", "stac_version": catalog.DefaultSTACVersion, "id": it.ID, "collection": it.Collection,
		"geometry": nil,
		"properties": map[string]any{
			"datetime": catalog.FormatTime(it.Start), catalog.PropState: it.State,
			catalog.PropCreated: catalog.FormatTime(it.Created), catalog.PropUpdated: catalog.FormatTime(it.Updated),
		},
		"links": []catalog.Document{
			link("self", base+catalog.ItemPath(it.Collection, it.ID), mediaGeoJSON),
			link("parent", coll, mediaJSON), link("collection", coll, mediaJSON), link("root", base+"/", mediaJSON),
		},
		"assets": map[string]any{},
	})
}

// renderCollection returns the JSON of a collection as served.
func renderCollection(base string, c *catalog.Collection) (json.RawMessage, error) {
	d := c.Doc.Clone()
	var links []catalog.Document
	if !d.IsNull("links") {
		_ = json.Unmarshal(d["links"], &links)
	}
	self := collectionURL(base, c.ID)
	links = append(links,
		link("self", self, mediaJSON),
		link("parent", base+"/", mediaJSON),
		link("root", base+"/", mediaJSON),
		link("items", self+"/items", mediaGeoJSON),
		link("http://www.opengis.net/def/rel/ogc/1.0/queryables", self+"/queryables", mediaSchema),
		link("aggregate", self+"/aggregate", mediaJSON),
		link("aggregations", self+"/aggregations", mediaJSON),
	)
	d.Set("links", links)
	return json.Marshal(d)
}

// ---- paging tokens ----

func encodeCollectionToken(dir, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(dir + ":" + id))
}

func decodeCollectionToken(s string) (after, before string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	dir, id, ok := strings.Cut(string(b), ":")
	if err != nil || !ok || id == "" || (dir != "n" && dir != "p") {
		return "", "", catalog.Invalid("query.token", "the paging token is not valid; use the links the server returns")
	}
	if dir == "n" {
		return id, "", nil
	}
	return "", id, nil
}

// ---- conditional requests ----

// parseIfMatch reads an If-Match header: "*" or a list of entity tags.
// Weak tags never match (If-Match uses strong comparison).
func parseIfMatch(h string) catalog.Preconditions {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil
	}
	if h == "*" {
		return catalog.Preconditions{"*"}
	}
	out := catalog.Preconditions{}
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if strings.HasPrefix(part, "W/") {
			continue
		}
		out = append(out, strings.Trim(part, `"`))
	}
	return out
}

func quoteETag(etag string) string { return `"` + etag + `"` }
