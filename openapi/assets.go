package openapi

import (
	"context"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

// AssetPath names an asset of an item in the path.
type AssetPath struct {
	ItemPath
	AssetKey string `path:"assetKey" doc:"The asset key, such as data or execute." example:"execute"`
}

// StreamBody captures the request body as a stream, so that uploads and
// bulk loads never sit whole in memory.
type StreamBody struct {
	body        io.Reader
	contentType string
}

// Resolve implements huma.Resolver.
func (b *StreamBody) Resolve(ctx huma.Context) []error {
	b.body = ctx.BodyReader()
	b.contentType = ctx.Header("Content-Type")
	return nil
}

type putAssetInput struct {
	AssetPath
	IfMatchHeader
	ContentLength int64 `header:"Content-Length" doc:"The size of the file, when known; an upload over the limit is refused before it is read."`
	StreamBody
}

type getAssetOutput struct {
	Body func(huma.Context)
}

func (s *Server) registerAssets() {
	op := s.operation("putAsset", http.MethodPut, "/collections/{collectionId}/items/{itemId}/assets/{assetKey}", "Assets",
		"Upload an asset file",
		"Streams a file into the blob store and records it as the item's asset: href (the download URL), type (the request's Content-Type), file:size and file:checksum (sha2-256 multihash). Only drafts take uploads. An upload over the size limit is refused (413) and leaves nothing behind.",
		http.StatusOK, 400, 404, 409, 410, 412, 413, 403)
	op.RequestBody = &huma.RequestBody{Required: true, Description: "The file's bytes, with any Content-Type.", Content: map[string]*huma.MediaType{
		"application/octet-stream": {},
		"*/*":                      {},
	}}
	huma.Register(s.api, op, func(ctx context.Context, in *putAssetInput) (*itemOutput, error) {
		if err := s.mayChangeItem(ctx, in.ItemPath, access.ActionUpdate); err != nil {
			return nil, err
		}
		if max := s.deps.Catalog.MaxAssetBytes; max > 0 && in.ContentLength > max {
			return nil, catalog.Errorf(catalog.ETOOLARGE, "the upload of %d bytes exceeds the asset size limit of %d bytes", in.ContentLength, max)
		}
		coll, err := s.deps.Catalog.GetCollection(ctx, in.CollectionID)
		if err != nil {
			return nil, err
		}
		quota, err := s.deps.Quotas.For(ctx, CallerOf(ctx), coll.Owner)
		if err != nil {
			return nil, err
		}
		it, err := s.deps.Catalog.PutAsset(ctx, in.CollectionID, in.ItemID, in.AssetKey, in.contentType, in.body, parseIfMatch(in.IfMatch), quota)
		if err != nil {
			return nil, err
		}
		return s.itemOut(ctx, it)
	})

	op = s.operation("getAsset", http.MethodGet, "/collections/{collectionId}/items/{itemId}/assets/{assetKey}", "Assets",
		"Download an asset file",
		"Downloads an uploaded asset file. Supports Range requests (206) and If-None-Match (304) against the file's ETag.",
		http.StatusOK, 404, 410, 416)
	op.Responses = map[string]*huma.Response{
		"200": {Description: "The file, with the media type it was uploaded with.", Content: map[string]*huma.MediaType{"*/*": {}}, Headers: map[string]*huma.Param{
			"ETag":          {Description: "The file's checksum as an entity tag.", Schema: &huma.Schema{Type: "string"}},
			"Accept-Ranges": {Description: "bytes", Schema: &huma.Schema{Type: "string"}},
		}},
		"206": {Description: "A part of the file.", Content: map[string]*huma.MediaType{"*/*": {}}},
		"304": {Description: "The file has not changed since the ETag in If-None-Match."},
	}
	huma.Register(s.api, op, func(ctx context.Context, in *AssetPath) (*getAssetOutput, error) {
		if _, err := s.readableItem(ctx, in.CollectionID, in.ItemID); err != nil {
			return nil, err
		}
		blob, asset, err := s.deps.Catalog.OpenAsset(ctx, in.CollectionID, in.ItemID, in.AssetKey)
		if err != nil {
			return nil, err
		}
		return &getAssetOutput{Body: func(hctx huma.Context) {
			defer blob.Close()
			r, w := humago.Unwrap(hctx)
			typ, _, _ := asset.String("", "type")
			sum, _, _ := asset.String("", "file:checksum")
			if typ != "" {
				w.Header().Set("Content-Type", typ)
			}
			w.Header().Set("ETag", quoteETag(sum))
			http.ServeContent(w, r, "", blob.ModTime(), blob)
		}}, nil
	})
}
