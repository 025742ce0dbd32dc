package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/twinstac/twinstac/client"
)

// readDoc reads a JSON or YAML document from a file, or from standard
// input for "-", as JSON.
func readDoc(stdin io.Reader, name string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, usageError{err}
	}
	out, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s is neither JSON nor YAML: %w", name, err)}
	}
	return out, nil
}

// collect takes up to limit elements of seq (all of them when limit is
// 0): their JSON as the server wrote it, and their values.
func collect[T any](seq iter.Seq2[client.Doc[T], error], limit int) ([]json.RawMessage, []T, error) {
	var (
		docs []json.RawMessage
		list []T
	)
	for x, err := range seq {
		if err != nil {
			return nil, nil, connOr(err)
		}
		docs, list = append(docs, x.Raw), append(list, x.Value)
		if limit > 0 && len(list) >= limit {
			break
		}
	}
	return docs, list, nil
}

// connOr marks an error without an HTTP status as a connection error.
func connOr(err error) error {
	if client.StatusOf(err) == 0 {
		return connError{err}
	}
	return err
}

func newCollections(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "collections", Short: "List, show, create and delete collections"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List the collections you may read", Example: "  twinstac collections list -o ndjson", Args: args(0),
		RunE: c.withAPI(func(cmd *cobra.Command, _ []string, api *client.API) error {
			docs, list, err := collect(api.CollectionDocs(cmd.Context(), nil), 0)
			if err != nil {
				return err
			}
			return c.showList(docs, false, func(w io.Writer) {
				rows(w, []string{"ID", "TITLE", "DESCRIPTION"})
				for _, x := range list {
					rows(w, []string{x.Id, orDash(x.Title), clip(x.Description, 60)})
				}
			})
		}),
	}, &cobra.Command{
		Use: "get COLLECTION", Short: "Show a collection", Example: "  twinstac collections get twins -o yaml", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetCollectionWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				rows(w, []string{"ID", r.JSON200.Id}, []string{"TITLE", orDash(r.JSON200.Title)}, []string{"DESCRIPTION", r.JSON200.Description},
					[]string{"LICENSE", r.JSON200.License})
			})
		}),
	}, &cobra.Command{
		Use: "create FILE", Short: "Create a collection from a JSON or YAML document (- reads standard input)",
		Example: "  twinstac collections create twins.yaml", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			body, err := readDoc(cmd.InOrStdin(), a[0])
			if err != nil {
				return err
			}
			r, err := call(api.CreateCollectionWithBodyWithResponse(cmd.Context(), "application/json", bytes.NewReader(body)))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) { fmt.Fprintf(w, "created collection %s\n", r.JSON201.Id) })
		}),
	}, &cobra.Command{
		Use: "delete COLLECTION", Short: "Delete a collection and its items", Example: "  twinstac collections delete scratch", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			if _, err := call(api.DeleteCollectionWithResponse(cmd.Context(), a[0], nil)); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "deleted collection %s\n", a[0])
			return nil
		}),
	})
	return cmd
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// itemRows is the table of items.
func itemRows(w io.Writer, list []client.ItemProjection) {
	rows(w, []string{"COLLECTION", "ID", "DATETIME", "STATE", "TITLE"})
	for _, it := range list {
		prop := func(k string) string {
			if it.Properties == nil {
				return "-"
			}
			v, ok := it.Properties.Get(k)
			if !ok || v == nil {
				return "-"
			}
			return fmt.Sprint(v)
		}
		// datetime and dt:state are fields of their own in the
		// generated type, not additional properties.
		dt, state := "-", "-"
		if it.Properties != nil && it.Properties.Datetime != nil {
			dt = it.Properties.Datetime.UTC().Format(time.RFC3339)
		} else {
			dt = prop("start_datetime")
		}
		if it.Properties != nil && it.Properties.DtState != nil {
			state = string(*it.Properties.DtState)
		}
		rows(w, []string{orDash(it.Collection), it.Id, dt, state, prop("title")})
	}
}

func newItems(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "items", Short: "List, show, create, move through the lifecycle and delete items"}
	var limit int
	var all bool
	list := &cobra.Command{
		Use: "list COLLECTION", Short: "List a collection's items, newest first",
		Example: "  twinstac items list twins --limit 20\n  twinstac items list twins --all -o ndjson", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			page := int64(limit)
			max := limit
			if all {
				max = 0
			}
			docs, items, err := collect(api.ItemDocs(cmd.Context(), a[0], &client.GetItemsParams{Limit: &page}), max)
			if err != nil {
				return err
			}
			return c.showList(docs, false, func(w io.Writer) { itemRows(w, items) })
		}),
	}
	list.Flags().IntVar(&limit, "limit", 10, "items per page, and how many to show without --all")
	list.Flags().BoolVar(&all, "all", false, "follow the pages to the last")
	move := func(verb, state, example string) *cobra.Command {
		var reason string
		m := &cobra.Command{
			Use: verb + " COLLECTION ITEM", Short: strings.ToUpper(verb[:1]) + verb[1:] + " an item (its state becomes " + state + ")",
			Example: example, Args: args(2),
			RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
				req := client.LifecycleRequest{State: client.LifecycleRequestState(state)}
				if reason != "" {
					req.Reason = &reason
				}
				r, err := call(api.MoveItemWithResponse(cmd.Context(), a[0], a[1], nil, req))
				if err != nil {
					return err
				}
				return c.show(r.Body, func(w io.Writer) { fmt.Fprintf(w, "%s/%s is %s\n", a[0], a[1], state) })
			}),
		}
		m.Flags().StringVar(&reason, "reason", "", "why, kept with the item")
		return m
	}
	cmd.AddCommand(list, &cobra.Command{
		Use: "get COLLECTION ITEM", Short: "Show an item", Example: "  twinstac items get twins water-tank -o json", Args: args(2),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetItemWithResponse(cmd.Context(), a[0], a[1]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				var it client.ItemProjection
				_ = json.Unmarshal(r.Body, &it)
				itemRows(w, []client.ItemProjection{it})
			})
		}),
	}, &cobra.Command{
		Use: "create COLLECTION FILE", Short: "Create an item (a draft) from a JSON or YAML document (- reads standard input)",
		Example: "  twinstac items create twins tank.json", Args: args(2),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			body, err := readDoc(cmd.InOrStdin(), a[1])
			if err != nil {
				return err
			}
			r, err := call(api.CreateItemWithBodyWithResponse(cmd.Context(), a[0], "application/json", bytes.NewReader(body)))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				var it client.ItemProjection
				_ = json.Unmarshal(r.Body, &it)
				fmt.Fprintf(w, "created %s/%s\n", a[0], it.Id)
			})
		}),
	},
		move("publish", "published", "  twinstac items publish twins water-tank"),
		move("deprecate", "deprecated", "  twinstac items deprecate twins water-tank --reason 'superseded'"),
		move("archive", "archived", "  twinstac items archive twins water-tank"),
		&cobra.Command{
			Use: "delete COLLECTION ITEM", Short: "Delete an item (a tombstone stays)", Example: "  twinstac items delete twins old-tank", Args: args(2),
			RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
				if _, err := call(api.DeleteItemWithResponse(cmd.Context(), a[0], a[1], nil)); err != nil {
					return err
				}
				fmt.Fprintf(c.stderr, "deleted %s/%s\n", a[0], a[1])
				return nil
			}),
		})
	return cmd
}

// searchFlags are the flags of `twinstac search`.
type searchFlags struct {
	collections         []string
	bbox                string
	datetime, filter, q string
	sortby              string
	limit               int
	all                 bool
}

func (f *searchFlags) body() (client.SearchBody, error) {
	var b client.SearchBody
	if len(f.collections) > 0 {
		b.Collections = &f.collections
	}
	if f.bbox != "" {
		var box []float64
		for _, s := range strings.Split(f.bbox, ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return b, usageError{fmt.Errorf("--bbox %q: four or six numbers, comma-separated", f.bbox)}
			}
			box = append(box, x)
		}
		if len(box) != 4 && len(box) != 6 {
			return b, usageError{fmt.Errorf("--bbox %q: four or six numbers, comma-separated", f.bbox)}
		}
		b.Bbox = &box
	}
	if f.datetime != "" {
		b.Datetime = &f.datetime
	}
	if f.filter != "" {
		var flt client.SearchBody_Filter
		if err := flt.FromSearchBodyFilter1(f.filter); err != nil {
			return b, err
		}
		lang := client.SearchBodyFilterLang("cql2-text")
		b.Filter, b.FilterLang = &flt, &lang
	}
	if f.q != "" {
		var q client.SearchBody_Q
		if err := q.FromSearchBodyQ0(f.q); err != nil {
			return b, err
		}
		b.Q = &q
	}
	if f.sortby != "" {
		var sb []client.SortByJSON
		for _, s := range strings.Split(f.sortby, ",") {
			s = strings.TrimSpace(s)
			dir := client.SortByJSONDirection("asc")
			if strings.HasPrefix(s, "-") {
				dir, s = "desc", s[1:]
			}
			s = strings.TrimPrefix(s, "+")
			sb = append(sb, client.SortByJSON{Field: s, Direction: &dir})
		}
		b.Sortby = &sb
	}
	page := int64(f.limit)
	b.Limit = &page
	return b, nil
}

func newSearch(c *cli) *cobra.Command {
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search items across collections (STAC item search, CQL2 filters)",
		Example: `  twinstac search --collections twins --filter "dt:kind = 'digital-twin'"
  twinstac search --bbox 5,45,15,55 --datetime 2026-01-01T00:00:00Z/.. --sortby -datetime --limit 50
  twinstac search --collections models-tank-results --filter '"dt:input:inflow" > 0.4' --all -o ndjson`,
		Args: args(0),
		RunE: c.withAPI(func(cmd *cobra.Command, _ []string, api *client.API) error {
			body, err := f.body()
			if err != nil {
				return err
			}
			max := f.limit
			if f.all {
				max = 0
			}
			docs, items, err := collect(api.SearchDocs(cmd.Context(), body), max)
			if err != nil {
				return err
			}
			return c.showList(docs, false, func(w io.Writer) { itemRows(w, items) })
		}),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.collections, "collections", nil, "search these collections only (comma-separated)")
	fl.StringVar(&f.bbox, "bbox", "", "west,south,east,north (or with bottom and top)")
	fl.StringVar(&f.datetime, "datetime", "", "an instant, or an interval start/end (.. for open)")
	fl.StringVar(&f.filter, "filter", "", "a CQL2 text filter")
	fl.StringVar(&f.q, "q", "", "free text in titles, descriptions and keywords")
	fl.StringVar(&f.sortby, "sortby", "", "sort fields, comma-separated, - for descending (e.g. -datetime,id)")
	fl.IntVar(&f.limit, "limit", 10, "items per page, and how many to show without --all")
	fl.BoolVar(&f.all, "all", false, "follow the pages to the last")
	return cmd
}
