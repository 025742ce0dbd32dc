package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/openapi"
)

// benchExplain holds the settings of `twinstac bench explain`.
type benchExplain struct {
	databaseURL string
	queries     string
	only        []string
	analyze     bool
	count       bool
	access      string
	repeat      int
}

func newBenchExplain(stdout io.Writer) *cobra.Command {
	b := benchExplain{analyze: true, repeat: 3}
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show PostgreSQL's plan of each benchmark query",
		Long: `Compile each query of the workload's queries.json as POST /search would
(as an administrator: no access rules, unless --access names a file of
read rules) and print EXPLAIN (ANALYZE, BUFFERS) of its page query on the
PostgreSQL database. The read rules file is JSON: {"collections": [...],
"drafts": [...], "shares": [{"policy": ..., "items": [{"collection": ...,
"id": ...}]}], "owner": ...}: the collections the caller reads, those
whose drafts it sees, the policies of the database that share items with
it one by one (with the items they name) and its user id. The paging cases are not
included: their plans are those of the first page with a keyset bound.`,
		Example: `  twinstac bench explain --database-url 'postgres://postgres@127.0.0.1:5432/twinstac_bench?sslmode=disable' --query q8`,
		RunE:    func(cmd *cobra.Command, _ []string) error { return b.run(cmd.Context(), stdout) },
	}
	f := cmd.Flags()
	f.StringVar(&b.databaseURL, "database-url", "", "PostgreSQL URL of a database holding the workload (required)")
	f.StringVar(&b.queries, "queries", "../shared/bench/queries.json", "the workload's queries.json")
	f.StringSliceVar(&b.only, "query", nil, "explain only these queries")
	f.StringVar(&b.access, "access", "", "a JSON file of read rules to explain the queries under (default: none, as an administrator)")
	f.IntVar(&b.repeat, "repeat", b.repeat, "explain each query this many times and print the last plan (the first runs on cold caches)")
	f.BoolVar(&b.analyze, "analyze", b.analyze, "run the queries (EXPLAIN ANALYZE) rather than only plan them")
	f.BoolVar(&b.count, "count", false, "explain the statement that counts the matches (numberMatched) instead of the page")
	return cmd
}

func (b *benchExplain) run(ctx context.Context, stdout io.Writer) error {
	if b.databaseURL == "" {
		return errors.New("--database-url is required")
	}
	raw, err := os.ReadFile(b.queries)
	if err != nil {
		return err
	}
	var file struct {
		Queries []struct {
			Name  string          `json:"name"`
			Title string          `json:"title"`
			Body  json.RawMessage `json:"body"`
		} `json:"queries"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return fmt.Errorf("%s: %w", b.queries, err)
	}
	access, err := readAccess(b.access)
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, b.databaseURL, postgres.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, q := range file.Queries {
		if len(b.only) > 0 && !slices.Contains(b.only, q.Name) {
			continue
		}
		sq, err := openapi.ParseSearchBody(q.Body)
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		sq.Access = access
		var plan string
		for range max(b.repeat, 1) {
			if plan, err = st.ExplainSearch(ctx, sq, b.analyze, b.count); err != nil {
				return fmt.Errorf("%s: %w", q.Name, err)
			}
		}
		fmt.Fprintf(stdout, "== %s: %s\n%s\n\n", q.Name, q.Title, plan)
	}
	return nil
}

// readAccess reads a file of read rules (nil for "").
func readAccess(path string) (*search.Access, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Collections []string `json:"collections"`
		Drafts      []string `json:"drafts"`
		Shares      []struct {
			Policy string `json:"policy"`
			Items  []struct {
				Collection string `json:"collection"`
				ID         string `json:"id"`
			} `json:"items"`
		} `json:"shares"`
		Owner string `json:"owner"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a := &search.Access{Collections: f.Collections, Drafts: f.Drafts, Owner: f.Owner}
	for _, sh := range f.Shares {
		share := search.Share{Policy: sh.Policy}
		for _, it := range sh.Items {
			share.Items = append(share.Items, search.ItemRef{Collection: it.Collection, ID: it.ID})
		}
		a.Shares = append(a.Shares, share)
	}
	return a, nil
}
