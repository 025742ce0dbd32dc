package search

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// Aggregations (the STAC API aggregation extension): counts, time
// ranges and frequency distributions over the items a query matches.

// Aggregator computes aggregations. A store that does it in its query
// language implements it; Aggregate falls back to reading the matches.
type Aggregator interface {
	// Aggregate computes specs over the matches of a prepared query
	// (its sort, page and count settings are ignored).
	// Codes: EINVALID, EUNAVAILABLE.
	Aggregate(ctx context.Context, q *Query, specs []AggSpec) ([]AggResult, error)
}

// AggKind is what an aggregation computes.
type AggKind int

// The kinds of aggregation.
const (
	AggCount    AggKind = iota // the number of matches
	AggMinTime                 // the earliest start
	AggMaxTime                 // the latest end
	AggTimeFreq                // matches per interval of their start
	AggTerms                   // matches per value of a property (each element of an array)
	AggRanges                  // matches per range of a numeric property
	AggExtent                  // the bbox of the geometries
)

// AggSpec is one aggregation to compute.
type AggSpec struct {
	Name string
	Kind AggKind
	// Property is the property of AggTerms and AggRanges ("collection",
	// "dt:state" and any property).
	Property string
	// Interval is AggTimeFreq's: year, month, day or hour.
	Interval string
	// Edges are AggRanges' bucket bounds: [Edges[i], Edges[i+1]), the
	// last one closed.
	Edges []float64
}

// AggResult is an aggregation's answer: a Value or Buckets.
type AggResult struct {
	Name     string   `json:"name"`
	DataType string   `json:"data_type"`
	Value    any      `json:"value,omitempty"`
	Buckets  []Bucket `json:"buckets,omitempty"`
	Overflow *int64   `json:"overflow,omitempty"`
}

// Bucket is one bucket of a distribution.
type Bucket struct {
	Key       string   `json:"key"`
	DataType  string   `json:"data_type"`
	Frequency int64    `json:"frequency"`
	From      *float64 `json:"from,omitempty"`
	To        *float64 `json:"to,omitempty"`
}

// MaxTermBuckets bounds a term distribution: the most frequent values,
// the rest counted in Overflow.
const MaxTermBuckets = 100

// Intervals of a datetime distribution.
var Intervals = []string{"year", "month", "day", "hour"}

// Named aggregations besides "<property>_frequency".
var namedAggs = map[string]AggSpec{
	"total_count":           {Kind: AggCount},
	"datetime_min":          {Kind: AggMinTime},
	"datetime_max":          {Kind: AggMaxTime},
	"datetime_frequency":    {Kind: AggTimeFreq},
	"collection_frequency":  {Kind: AggTerms, Property: PropCollection},
	"platform_frequency":    {Kind: AggTerms, Property: "platform"},
	"cloud_cover_frequency": {Kind: AggRanges, Property: "eo:cloud_cover", Edges: []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}},
	"spatial_extent":        {Kind: AggExtent},
}

// DefaultAggregations are computed when a request names none.
var DefaultAggregations = []string{"total_count", "datetime_min", "datetime_max", "collection_frequency"}

// AggregationNames lists the named aggregations and their data types.
func AggregationNames() []AggResult {
	var out []AggResult
	for _, n := range slices.Sorted(maps.Keys(namedAggs)) {
		out = append(out, AggResult{Name: n, DataType: dataType(namedAggs[n])})
	}
	out = append(out, AggResult{Name: "<property>_frequency", DataType: "frequency_distribution"})
	return out
}

func dataType(s AggSpec) string {
	switch s.Kind {
	case AggCount:
		return "integer"
	case AggMinTime, AggMaxTime:
		return "datetime"
	case AggTimeFreq:
		if s.Interval == "" {
			return "frequency_distribution"
		}
		return "interval_" + s.Interval
	case AggRanges:
		return "numeric"
	case AggExtent:
		return "bbox"
	}
	return "frequency_distribution"
}

// ParseAggregations reads requested names (at locates them for errors):
// the named ones, "<property>_frequency" for a term distribution of any
// property (dt:kind_frequency, keywords_frequency), and interval for
// datetime_frequency ("" picks one from the range of the matches).
// Codes: EINVALID.
func ParseAggregations(at string, names []string, interval string) ([]AggSpec, error) {
	if interval != "" && !slices.Contains(Intervals, interval) {
		return nil, catalog.Invalid(at, "the datetime interval is one of %s, not %q", strings.Join(Intervals, ", "), interval)
	}
	if len(names) == 0 {
		names = DefaultAggregations
	}
	var out []AggSpec
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		s, ok := namedAggs[n]
		switch {
		case ok:
		case strings.HasSuffix(n, "_frequency") && len(n) > len("_frequency"):
			p := NormalizeProperty(strings.TrimSuffix(n, "_frequency"))
			switch p {
			case PropGeometry, PropGeom, PropID:
				return nil, catalog.Invalid(at, "no frequency distribution of %q", p)
			}
			s = AggSpec{Kind: AggTerms, Property: p}
		default:
			return nil, catalog.Invalid(at, "unknown aggregation %q; GET /aggregations lists them", n)
		}
		s.Name = n
		if s.Kind == AggTimeFreq {
			s.Interval = interval
		}
		out = append(out, s)
	}
	return out, nil
}

// AutoInterval picks a datetime interval for matches from first to last
// start: hours within two days, days within three months, months within
// five years, years beyond.
func AutoInterval(first, last time.Time) string {
	switch d := last.Sub(first); {
	case d <= 48*time.Hour:
		return "hour"
	case d <= 92*24*time.Hour:
		return "day"
	case d <= 5*366*24*time.Hour:
		return "month"
	}
	return "year"
}

// TruncTime truncates t (UTC) to the start of its interval.
func TruncTime(t time.Time, interval string) time.Time {
	t = t.UTC()
	switch interval {
	case "year":
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "day":
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

// TermKey is the bucket key of a property value: a string as it is, a
// number in its shortest form, true or false.
func TermKey(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
	case 't':
		return "true", true
	case 'f':
		return "false", true
	case 'n', '[', '{':
		return "", false
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err == nil && !math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64), true
		}
	}
	return "", false
}

// Aggregate computes specs over the matches of q: with the store's own
// Aggregator when it has one, otherwise by reading every match a page at
// a time.
func Aggregate(ctx context.Context, s Searcher, q *Query, specs []AggSpec) ([]AggResult, error) {
	if a, ok := s.(Aggregator); ok {
		return a.Aggregate(ctx, q, specs)
	}
	page := *q
	page.Limit, page.Count, page.After, page.Before = catalog.MaxPageSize, false, nil, nil
	page.Sort = nil
	if err := Prepare(&page); err != nil {
		return nil, err
	}
	var items []*catalog.Item
	for {
		p, err := s.Search(ctx, &page)
		if err != nil {
			return nil, err
		}
		items = append(items, p.Items...)
		if p.Next == nil {
			break
		}
		page.After = p.Next
	}
	return AggregateItems(specs, items), nil
}

// AggregateItems computes specs over items that match: the reference the
// stores' aggregations are tested against.
func AggregateItems(specs []AggSpec, items []*catalog.Item) []AggResult {
	out := make([]AggResult, 0, len(specs))
	for _, s := range specs {
		r := AggResult{Name: s.Name, DataType: dataType(s)}
		switch s.Kind {
		case AggCount:
			r.Value = int64(len(items))
		case AggMinTime, AggMaxTime:
			var best *time.Time
			for _, it := range items {
				t := it.Start
				if s.Kind == AggMaxTime {
					t = it.End
				}
				if best == nil || (s.Kind == AggMinTime && t.Before(*best)) || (s.Kind == AggMaxTime && t.After(*best)) {
					best = &t
				}
			}
			if best != nil {
				r.Value = catalog.FormatTime(*best)
			}
		case AggTimeFreq:
			interval := s.Interval
			if interval == "" && len(items) > 0 {
				first, last := items[0].Start, items[0].Start
				for _, it := range items {
					first, last = minTime(first, it.Start), maxTime(last, it.Start)
				}
				interval = AutoInterval(first, last)
			}
			if interval != "" {
				r.DataType = "interval_" + interval
			}
			counts := map[time.Time]int64{}
			for _, it := range items {
				counts[TruncTime(it.Start, interval)]++
			}
			keys := slices.SortedFunc(maps.Keys(counts), time.Time.Compare)
			for _, k := range keys {
				r.Buckets = append(r.Buckets, Bucket{Key: catalog.FormatTime(k), DataType: "datetime", Frequency: counts[k]})
			}
		case AggTerms:
			counts := map[string]int64{}
			for _, it := range items {
				for _, raw := range termValues(s.Property, it) {
					if k, ok := TermKey(raw); ok {
						counts[k]++
					}
				}
			}
			r.Buckets, r.Overflow = TopTerms(counts)
		case AggRanges:
			counts := make([]int64, len(s.Edges)-1)
			var over int64
			for _, it := range items {
				v, ok := number(it.Props[s.Property])
				if !ok {
					continue
				}
				if i := RangeBucket(s.Edges, v); i >= 0 {
					counts[i]++
				} else {
					over++
				}
			}
			r.Buckets = RangeBuckets(s.Edges, counts)
			r.Overflow = &over
		case AggExtent:
			var box []float64
			for _, it := range items {
				g, err := it.LoadGeometry()
				if err != nil || g == nil || it.Deleted() {
					continue
				}
				w, so, e, n := Corners(catalog.GeometryBBox(g))
				if box == nil {
					box = []float64{w, so, e, n}
					continue
				}
				box[0], box[1], box[2], box[3] = math.Min(box[0], w), math.Min(box[1], so), math.Max(box[2], e), math.Max(box[3], n)
			}
			if box != nil {
				r.Value = box
			}
		}
		out = append(out, r)
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// termValues are the values a term distribution counts for an item: the
// property's value, or each element of an array.
func termValues(p string, it *catalog.Item) []json.RawMessage {
	switch p {
	case PropCollection:
		b, _ := json.Marshal(it.Collection)
		return []json.RawMessage{b}
	case PropState:
		b, _ := json.Marshal(string(it.State))
		return []json.RawMessage{b}
	}
	raw := bytes.TrimSpace(it.Props[p])
	if len(raw) > 0 && raw[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			return list
		}
		return nil
	}
	return []json.RawMessage{raw}
}

func number(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == '"' || raw[0] == 'n' || raw[0] == 't' || raw[0] == 'f' || raw[0] == '[' || raw[0] == '{' {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// TopTerms orders term counts by frequency (then key) and keeps the
// first MaxTermBuckets; overflow counts the values left out.
func TopTerms(counts map[string]int64) ([]Bucket, *int64) {
	var bs []Bucket
	for k, n := range counts {
		bs = append(bs, Bucket{Key: k, DataType: "string", Frequency: n})
	}
	slices.SortFunc(bs, func(a, b Bucket) int {
		if a.Frequency != b.Frequency {
			if a.Frequency > b.Frequency {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	var over int64
	if len(bs) > MaxTermBuckets {
		for _, b := range bs[MaxTermBuckets:] {
			over += b.Frequency
		}
		bs = bs[:MaxTermBuckets]
	}
	return bs, &over
}

// RangeBucket returns the bucket of v: i for [edges[i], edges[i+1]), the
// last bucket closed; -1 outside.
func RangeBucket(edges []float64, v float64) int {
	n := len(edges) - 1
	if n < 1 || v < edges[0] || v > edges[n] {
		return -1
	}
	for i := range n {
		if v < edges[i+1] || i == n-1 {
			return i
		}
	}
	return -1
}

// RangeBuckets builds the buckets of a range distribution.
func RangeBuckets(edges []float64, counts []int64) []Bucket {
	var out []Bucket
	for i, n := range counts {
		from, to := edges[i], edges[i+1]
		key := strconv.FormatFloat(from, 'g', -1, 64) + "-" + strconv.FormatFloat(to, 'g', -1, 64)
		out = append(out, Bucket{Key: key, DataType: "numeric", Frequency: n, From: &from, To: &to})
	}
	return out
}
