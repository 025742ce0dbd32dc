package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/client"
	"github.com/twinstac/twinstac/workers"
)

// The folders of a DTaaS asset library, and the kinds of their items.
var libraryKinds = []struct{ folder, kind, collection string }{
	{"digital_twins", "digital-twin", "digital-twins"},
	{"models", "model", "models"},
	{"tools", "tool", "tools"},
	{"data", "data", "data"},
	{"functions", "function", "functions"},
}

// propLibraryPath is the item property that keeps the library folder an
// item's files came from (digital_twins/water-tank; data for a lone
// file), so that export writes them back where they were.
const propLibraryPath = "dt:library_path"

// libItem is one item of a library: a folder of a kind folder (all its
// files) or a lone file in it.
type libItem struct {
	kind, collection, id string
	// dir is the item's folder in the library, relative to its root.
	dir   string
	files []libFile
	props map[string]any
}

// libFile is one file of an item: its asset.
type libFile struct {
	abs, rel  string // the file, and its path in the item's folder
	key, role string
	size      int64
	checksum  string // multihash sha2-256, as the server records it
}

// metadataNames are files without an extension that describe a folder
// rather than run in it.
var metadataNames = map[string]bool{"LICENSE": true, "LICENCE": true, "COPYING": true, "NOTICE": true,
	"README": true, "AUTHORS": true, "CHANGELOG": true, "CITATION": true}

// scanLibrary finds the items of a library: its kind folders, and those
// under common/ (into common-<collection>), with the collections named
// by over (keyed by kind folder, or common/<folder>).
func scanLibrary(root string, over map[string]string) ([]*libItem, error) {
	var items []*libItem
	for _, prefix := range []string{"", "common/"} {
		for _, k := range libraryKinds {
			base := filepath.Join(root, filepath.FromSlash(prefix+k.folder))
			entries, err := os.ReadDir(base)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			coll := k.collection
			if prefix != "" {
				coll = "common-" + coll
			}
			if c, ok := over[prefix+k.folder]; ok {
				coll = c
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				it := &libItem{kind: k.kind, collection: coll, id: e.Name()}
				abs := filepath.Join(base, e.Name())
				if e.IsDir() {
					it.dir = prefix + k.folder + "/" + e.Name()
					err = it.addFolder(abs)
				} else {
					it.dir = prefix + k.folder
					err = it.addFile(abs, e.Name())
				}
				if err != nil {
					return nil, err
				}
				if len(it.files) == 0 {
					continue
				}
				if err := it.describe(); err != nil {
					return nil, err
				}
				items = append(items, it)
			}
		}
	}
	// Two folders mapped to one collection may hold items of one name.
	seen := map[[2]string]string{}
	for _, it := range items {
		where := it.dir
		if path.Base(where) != it.id {
			where += "/" + it.id // a lone file
		}
		k := [2]string{it.collection, it.id}
		if other, ok := seen[k]; ok {
			return nil, usageError{fmt.Errorf("%s and %s would both be item %q of collection %q; map their folders to different collections",
				other, where, it.id, it.collection)}
		}
		seen[k] = where
	}
	return items, nil
}

func (it *libItem) addFolder(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return it.addFile(p, filepath.ToSlash(rel))
	})
}

// addFile adds a file as an asset: lifecycle scripts (under lifecycle/,
// or without an extension and executable or starting with #!) under
// their name, the phase;
// others under their path with / as _. Files such as LICENSE and README
// without an extension are metadata.
func (it *libItem) addFile(abs, rel string) error {
	f := libFile{abs: abs, rel: rel, key: strings.ReplaceAll(rel, "/", "_")}
	ext := strings.ToLower(path.Ext(rel))
	st, err := os.Stat(abs)
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(rel, "lifecycle/") || ext == "" && (st.Mode()&0o111 != 0 || workers.HasShebang(abs)):
		f.role, f.key = "lifecycle", path.Base(rel)
	case ext == "" && metadataNames[strings.ToUpper(path.Base(rel))]:
		f.role = "metadata"
	case ext == ".json" || ext == ".yaml" || ext == ".yml":
		f.role = "config"
	case ext == ".md":
		f.role = "description"
	default:
		f.role = "data"
	}
	used := map[string]string{} // asset key → the file that has it
	for _, o := range it.files {
		used[o.key] = o.rel
	}
	if _, ok := used[f.key]; ok {
		f.key = strings.ReplaceAll(rel, "/", "_")
		if o, ok := used[f.key]; ok {
			return fmt.Errorf("%s and %s of %s would be the same asset %q", o, rel, it.dir, f.key)
		}
	}
	h := sha256.New()
	fh, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer func() { _ = fh.Close() }()
	if f.size, err = io.Copy(h, fh); err != nil {
		return err
	}
	f.checksum = "1220" + hex.EncodeToString(h.Sum(nil))
	it.files = append(it.files, f)
	return nil
}

// describe sets the item's properties: its kind, where it came from,
// its title (the first heading of its description) and description,
// and a twin's parameters (parameters.json, a JSON schema).
func (it *libItem) describe() error {
	it.props = map[string]any{"dt:kind": it.kind, propLibraryPath: it.dir, "title": it.id}
	for _, f := range it.files {
		switch {
		case f.role == "description" && it.props["description"] == nil:
			b, err := os.ReadFile(f.abs)
			if err != nil {
				return err
			}
			title, text := markdownSummary(string(b))
			if title != "" {
				it.props["title"] = title
			}
			if text != "" {
				it.props["description"] = text
			}
		case it.kind == "digital-twin" && f.rel == "parameters.json":
			b, err := os.ReadFile(f.abs)
			if err != nil {
				return err
			}
			var schema map[string]any
			if err := json.Unmarshal(b, &schema); err != nil {
				return fmt.Errorf("%s/%s: %w", it.dir, f.rel, err)
			}
			it.props["dt:parameters"] = schema
		}
	}
	return nil
}

// markdownSummary returns the first heading of a markdown text and its
// first paragraph of prose.
func markdownSummary(md string) (title, text string) {
	var para []string
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			if title == "" {
				title = strings.TrimSpace(strings.TrimLeft(line, "#"))
			} else if len(para) > 0 {
				return title, strings.Join(para, " ")
			}
		case line == "":
			if len(para) > 0 {
				return title, strings.Join(para, " ")
			}
		default:
			para = append(para, line)
		}
	}
	return title, strings.Join(para, " ")
}

// importCounts counts what an import did, per collection.
type importCounts struct {
	created, updated, unchanged, held, files int
	bytes                                    int64
}

func newImport(c *cli) *cobra.Command {
	var (
		over    map[string]string
		publish bool
	)
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Import a DTaaS asset library: one item per asset folder or file",
		Long: `Import a DTaaS asset library: its folders digital_twins, models, tools,
data and functions (and those under common/) become collections
(digital-twins, models, …, common-models, …; --collection folder=id names
others), each folder or file in them an item of that kind (dt:kind), its
files the item's assets: files under lifecycle/, or without an extension
and executable or starting with #!, are lifecycle scripts, LICENSE,
README and the like metadata,
json and yaml files configuration, markdown files the description (its
first heading is the item's title). A twin's
parameters.json becomes its dt:parameters.

Run again, it uploads only the files whose checksum changed and leaves
unchanged items alone; a published item that changed is left as it is
(published files are immutable: make a new version). --publish publishes
the items it made or changed. A progress bar and a summary follow.`,
		Example: "  twinstac import ~/dtaas/files/user1 --publish\n  twinstac import ./library --collection digital_twins=twins --collection models=my-models",
		Args:    args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			items, err := scanLibrary(a[0], over)
			if err != nil {
				return usageError{err}
			}
			if len(items) == 0 {
				return usageError{fmt.Errorf("%s holds no digital_twins, models, tools, data or functions folder with files", a[0])}
			}
			ctx := cmd.Context()
			counts := map[string]*importCounts{}
			var colls []string
			for _, it := range items {
				if counts[it.collection] == nil {
					counts[it.collection] = &importCounts{}
					colls = append(colls, it.collection)
				}
			}
			for _, coll := range colls {
				if err := ensureCollection(ctx, api, coll); err != nil {
					return err
				}
			}
			bar := c.bar(int64(len(items)), progressbar.OptionShowCount(), progressbar.OptionSetItsString("items"))
			start := time.Now()
			for _, it := range items {
				bar.Describe(it.collection + "/" + it.id)
				if err := importItem(ctx, api, it, publish, counts[it.collection], c.stderr); err != nil {
					_ = bar.Exit()
					fmt.Fprintln(c.stderr)
					return fmt.Errorf("%s (%s/%s): %w", it.dir, it.collection, it.id, err)
				}
				_ = bar.Add(1)
			}
			_ = bar.Finish()
			fmt.Fprintln(c.stderr)
			var docs []json.RawMessage
			for _, coll := range colls {
				n := counts[coll]
				docs = append(docs, mustJSON(map[string]any{"collection": coll, "created": n.created, "updated": n.updated,
					"unchanged": n.unchanged, "publishedChanged": n.held, "filesUploaded": n.files, "bytesUploaded": n.bytes}))
			}
			fmt.Fprintf(c.stderr, "imported %d items in %s\n", len(items), time.Since(start).Round(time.Millisecond))
			return c.showList(docs, false, func(w io.Writer) {
				rows(w, []string{"COLLECTION", "CREATED", "UPDATED", "UNCHANGED", "PUBLISHED, CHANGED", "FILES UPLOADED", "BYTES"})
				for _, coll := range colls {
					n := counts[coll]
					rows(w, []string{coll, fmt.Sprint(n.created), fmt.Sprint(n.updated), fmt.Sprint(n.unchanged), fmt.Sprint(n.held),
						fmt.Sprint(n.files), fmt.Sprint(n.bytes)})
				}
			})
		}),
	}
	cmd.Flags().StringToStringVar(&over, "collection", nil, "the collection of a library folder, as folder=collection (repeatable; common/models=… for common/)")
	cmd.Flags().BoolVar(&publish, "publish", false, "publish the items made or changed")
	return cmd
}

// ensureCollection makes a collection unless it exists.
func ensureCollection(ctx context.Context, api *client.API, id string) error {
	_, err := call(api.GetCollectionWithResponse(ctx, id))
	if client.StatusOf(err) != 404 {
		return err
	}
	doc := mustJSON(map[string]any{"type": "Collection", "stac_version": "1.1.0", "id": id, "license": "other",
		"description": "Imported from a DTaaS asset library.",
		"extent":      map[string]any{"spatial": map[string]any{"bbox": [][]float64{{-180, -90, 180, 90}}}, "temporal": map[string]any{"interval": [][]any{{nil, nil}}}},
		"links":       []any{}})
	_, err = call(api.CreateCollectionWithBodyWithResponse(ctx, "application/json", bytes.NewReader(doc)))
	if client.StatusOf(err) == 409 {
		return nil // made meanwhile
	}
	return err
}

// importItem creates or brings up to date one item.
func importItem(ctx context.Context, api *client.API, it *libItem, publish bool, n *importCounts, warn io.Writer) error {
	r, err := call(api.GetItemWithResponse(ctx, it.collection, it.id))
	if err != nil && client.StatusOf(err) != 404 {
		return err
	}
	var (
		state   = "draft"
		current map[string]struct {
			Checksum string `json:"file:checksum"`
		}
		currentProps map[string]any
	)
	if err == nil {
		var doc struct {
			Properties map[string]any `json:"properties"`
			Assets     map[string]struct {
				Checksum string `json:"file:checksum"`
			} `json:"assets"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			return err
		}
		current, currentProps = doc.Assets, doc.Properties
		if s, ok := doc.Properties["dt:state"].(string); ok {
			state = s
		}
	} else {
		doc := mustJSON(map[string]any{"type": "Feature", "stac_version": "1.1.0", "id": it.id, "geometry": nil, "links": []any{}, "assets": map[string]any{},
			"properties": mergeProps(map[string]any{"datetime": time.Now().UTC().Format(time.RFC3339)}, it.props)})
		if _, err := call(api.CreateItemWithBodyWithResponse(ctx, it.collection, "application/json", bytes.NewReader(doc))); err != nil {
			return err
		}
	}
	// What differs: files, removed files, properties.
	var upload []libFile
	keep := map[string]bool{}
	for _, f := range it.files {
		keep[f.key] = true
		if cur, ok := current[f.key]; !ok || cur.Checksum != f.checksum {
			upload = append(upload, f)
		}
	}
	var removed []string
	for k := range current {
		if !keep[k] {
			removed = append(removed, k)
		}
	}
	propsChanged := false
	for k, v := range it.props {
		if !jsonEqual(currentProps[k], v) {
			propsChanged = true
		}
	}
	created := current == nil
	changed := created || len(upload) > 0 || len(removed) > 0 || propsChanged
	switch {
	case !changed:
		n.unchanged++
	case state != "draft":
		n.held++
		fmt.Fprintf(warn, "\n%s/%s is %s and changed in the library: left as it is (make a new version to change it)\n", it.collection, it.id, state)
		return nil
	default:
		for _, f := range upload {
			fh, err := os.Open(f.abs)
			if err != nil {
				return err
			}
			size := f.size
			_, err = call(api.PutAssetWithBodyWithResponse(ctx, it.collection, it.id, f.key, &client.PutAssetParams{ContentLength: &size}, contentType(f), fh))
			_ = fh.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", f.rel, err)
			}
			n.files++
			n.bytes += f.size
		}
		assets := map[string]any{}
		for _, f := range it.files {
			assets[f.key] = map[string]any{"roles": []string{f.role}, "title": path.Base(f.rel), "dt:path": f.rel}
		}
		for _, k := range removed {
			assets[k] = nil
		}
		patch := mustJSON(map[string]any{"properties": it.props, "assets": assets})
		if _, err := call(api.UpdateItemWithBodyWithResponse(ctx, it.collection, it.id, nil, "application/merge-patch+json", bytes.NewReader(patch))); err != nil {
			return err
		}
		if created {
			n.created++
		} else {
			n.updated++
		}
	}
	if publish && state == "draft" {
		_, err := call(api.MoveItemWithResponse(ctx, it.collection, it.id, nil, client.LifecycleRequest{State: "published"}))
		return err
	}
	return nil
}

func mergeProps(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func jsonEqual(a, b any) bool {
	return bytes.Equal(mustJSON(a), mustJSON(b))
}

// contentType is the media type a file is uploaded with.
func contentType(f libFile) string {
	if f.role == "lifecycle" {
		return "text/x-shellscript"
	}
	if f.role == "description" {
		return "text/markdown"
	}
	if t := mime.TypeByExtension(path.Ext(f.rel)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func newExport(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "export COLLECTION DIR",
		Short: "Write a collection's items back as a DTaaS asset library",
		Long: `Write the files of a collection's items into DIR, laid out as the
library they were imported from (dt:library_path and each asset's
dt:path), or, for other items, as <kind folder>/<item>/<asset>.
Lifecycle scripts are written executable.`,
		Example: "  twinstac export digital-twins ./library",
		Args:    args(2),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			ctx := cmd.Context()
			files, items := 0, 0
			var size int64
			for it, err := range api.Items(ctx, a[0], nil) {
				if err != nil {
					return connOr(err)
				}
				n, b, err := exportItem(ctx, api, a[0], it, a[1])
				if err != nil {
					return fmt.Errorf("%s/%s: %w", a[0], it.Id, err)
				}
				files, size, items = files+n, size+b, items+1
			}
			fmt.Fprintf(c.stderr, "exported %d items, %d files (%d bytes) of %s into %s\n", items, files, size, a[0], a[1])
			return nil
		}),
	}
}

// exportItem writes one item's uploaded files.
func exportItem(ctx context.Context, api *client.API, coll string, it client.ItemProjection, root string) (files int, size int64, err error) {
	prop := func(k string) string {
		if it.Properties == nil {
			return ""
		}
		v, _ := it.Properties.Get(k)
		s, _ := v.(string)
		return s
	}
	dir := prop(propLibraryPath)
	if dir == "" || !filepath.IsLocal(filepath.FromSlash(dir)) {
		folder := "data"
		for _, k := range libraryKinds {
			if k.kind == prop("dt:kind") {
				folder = k.folder
			}
		}
		dir = folder + "/" + it.Id
	}
	if it.Assets == nil {
		return 0, 0, nil
	}
	keys := make([]string, 0, len(*it.Assets))
	for k := range *it.Assets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		asset := (*it.Assets)[key]
		raw := mustJSON(asset)
		var a struct {
			Href  string   `json:"href"`
			Roles []string `json:"roles"`
			Path  string   `json:"dt:path"`
		}
		_ = json.Unmarshal(raw, &a)
		if !strings.HasSuffix(a.Href, "/collections/"+url.PathEscape(coll)+"/items/"+url.PathEscape(it.Id)+"/assets/"+url.PathEscape(key)) {
			continue // a link elsewhere, not an uploaded file
		}
		rel := a.Path
		if rel == "" {
			rel = key
			if slices.Contains(a.Roles, "lifecycle") {
				rel = "lifecycle/" + key
			}
		}
		dest := filepath.Join(root, filepath.FromSlash(dir), filepath.FromSlash(rel))
		if !filepath.IsLocal(filepath.FromSlash(dir + "/" + rel)) {
			return files, size, fmt.Errorf("asset %s: the path %q leaves the library", key, rel)
		}
		mode := os.FileMode(0o644)
		if slices.Contains(a.Roles, "lifecycle") {
			mode = 0o755
		}
		n, err := download(ctx, api, coll, it.Id, key, dest, mode, nil)
		if err != nil {
			return files, size, fmt.Errorf("asset %s: %w", key, err)
		}
		files, size = files+1, size+n
	}
	return files, size, nil
}

// download writes an asset's file to dest (written aside, then renamed),
// reporting progress to bar when not nil.
func download(ctx context.Context, api *client.API, coll, item, key, dest string, mode os.FileMode, bar *progressbar.ProgressBar) (int64, error) {
	resp, err := api.ClientInterface.GetAsset(ctx, coll, item, key)
	if err != nil {
		return 0, connError{err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, client.ErrorOf(resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if bar != nil {
		bar.ChangeMax64(resp.ContentLength)
	}
	if dest == "-" {
		var w io.Writer = os.Stdout
		if bar != nil {
			w = io.MultiWriter(w, bar)
		}
		return io.Copy(w, resp.Body)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".download-*")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	var w io.Writer = tmp
	if bar != nil {
		w = io.MultiWriter(tmp, bar)
	}
	n, err := io.Copy(w, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dest)
}

func newAssets(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "assets", Short: "Upload and download the files of items"}
	var typ, to string
	upload := &cobra.Command{
		Use:   "upload COLLECTION ITEM KEY FILE",
		Short: "Upload a file as an asset of a draft item",
		Long: `Upload a file as asset KEY of a draft item (its href, file:size and
file:checksum are recorded), with a progress bar for large files. The
media type comes from --type, or the file's extension.`,
		Example: "  twinstac assets upload models tank mesh mesh.stl --type model/stl",
		Args:    args(4),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			fh, err := os.Open(a[3])
			if err != nil {
				return usageError{err}
			}
			defer func() { _ = fh.Close() }()
			fi, err := fh.Stat()
			if err != nil {
				return err
			}
			t := typ
			if t == "" {
				if t = mime.TypeByExtension(filepath.Ext(a[3])); t == "" {
					t = "application/octet-stream"
				}
			}
			bar := c.bar(fi.Size(), progressbar.OptionShowBytes(true), progressbar.OptionSetDescription(a[2]))
			size := fi.Size()
			body := io.TeeReader(fh, bar)
			r, err := call(api.PutAssetWithBodyWithResponse(cmd.Context(), a[0], a[1], a[2], &client.PutAssetParams{ContentLength: &size}, t, body))
			_ = bar.Finish()
			fmt.Fprintln(c.stderr)
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				fmt.Fprintf(w, "uploaded %s as %s/%s asset %s (%d bytes)\n", a[3], a[0], a[1], a[2], size)
			})
		}),
	}
	upload.Flags().StringVar(&typ, "type", "", "the media type (default: from the file's extension)")
	download := &cobra.Command{
		Use:     "download COLLECTION ITEM KEY",
		Short:   "Download an asset's file (--to FILE, - for standard output; default: the key in the current folder)",
		Example: "  twinstac assets download models-tank-results 01a2… level.csv --to level.csv",
		Args:    args(3),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			dest := to
			if dest == "" {
				dest = a[2]
			}
			bar := c.bar(-1, progressbar.OptionShowBytes(true), progressbar.OptionSetDescription(a[2]))
			n, err := download(cmd.Context(), api, a[0], a[1], a[2], dest, 0o644, bar)
			_ = bar.Finish()
			fmt.Fprintln(c.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "downloaded %d bytes to %s\n", n, dest)
			return nil
		}),
	}
	download.Flags().StringVar(&to, "to", "", "where to write the file (- for standard output)")
	cmd.AddCommand(upload, download)
	return cmd
}
