package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/client"
)

func newProcesses(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "processes", Short: "List and describe the twins you may run (OGC API – Processes)"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List the published twins you may run", Example: "  twinstac processes list", Args: args(0),
		RunE: c.withAPI(func(cmd *cobra.Command, _ []string, api *client.API) error {
			r, err := call(api.GetProcessesWithResponse(cmd.Context(), nil))
			if err != nil {
				return err
			}
			var docs []json.RawMessage
			for _, p := range r.JSON200.Processes {
				b, _ := json.Marshal(p)
				docs = append(docs, b)
			}
			return c.showList(docs, false, func(w io.Writer) {
				rows(w, []string{"PROCESS", "TITLE", "RUNS"})
				for _, p := range r.JSON200.Processes {
					rows(w, []string{p.Id, orDash(p.Title), strings.Join(p.JobControlOptions, ",")})
				}
			})
		}),
	}, &cobra.Command{
		Use: "describe PROCESS", Short: "Describe a twin's inputs and outputs", Example: "  twinstac processes describe twins:water-tank", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetProcessDescriptionWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				d := r.JSON200
				fmt.Fprintf(w, "%s\t%s\n\n", d.Id, orDash(d.Title))
				rows(w, []string{"INPUT", "REQUIRED", "SCHEMA", "DESCRIPTION"})
				names := make([]string, 0, len(d.Inputs))
				for k := range d.Inputs {
					names = append(names, k)
				}
				slices.Sort(names)
				for _, k := range names {
					in := d.Inputs[k]
					schema, _ := json.Marshal(in.Schema)
					rows(w, []string{k, fmt.Sprint(in.MinOccurs > 0), clip(string(schema), 50), clip(orDash(in.Description), 50)})
				}
			})
		}),
	})
	return cmd
}

// readInputs reads an inputs file: an execution body ({"inputs": …})
// or the inputs themselves, in JSON or YAML.
func readInputs(stdin io.Reader, name string) (map[string]any, error) {
	b, err := readDoc(stdin, name)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, usageError{fmt.Errorf("%s: the inputs are a mapping of names to values", name)}
	}
	if in, ok := doc["inputs"].(map[string]any); ok && len(doc) == 1 {
		return in, nil
	}
	return doc, nil
}

// setInputs adds --input name=value pairs to inputs; a value that reads
// as JSON (a number, true, [1,2]) is taken as that, any other as text.
func setInputs(inputs map[string]any, pairs []string) error {
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--input %q: use name=value", p)}
		}
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			x = v
		}
		inputs[k] = x
	}
	return nil
}

func newValidate(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PROCESS FILE",
		Short: "Check inputs against a twin's parameters; nothing runs",
		Long: `Check a configuration (the inputs, or an execution body with "inputs",
in JSON or YAML; - reads standard input) against the twin's parameters.
Every error is listed with where it is; the exit status is 2 when the
inputs are not valid.`,
		Example: "  twinstac validate twins:water-tank config.yaml",
		Args:    args(2),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			inputs, err := readInputs(cmd.InOrStdin(), a[1])
			if err != nil {
				return err
			}
			r, err := call(api.ValidateExecutionWithResponse(cmd.Context(), a[0], nil, client.ExecuteBody{Inputs: &inputs}))
			if err != nil {
				return err
			}
			v := r.JSON200
			if err := c.show(r.Body, func(w io.Writer) {
				if v.Valid {
					fmt.Fprintln(w, "valid")
					return
				}
				rows(w, []string{"WHERE", "PROBLEM"})
				for _, e := range v.Errors {
					rows(w, []string{e.Pointer, e.Message})
				}
			}); err != nil {
				return err
			}
			if !v.Valid {
				return usageError{fmt.Errorf("the inputs are not valid for %s (%d errors)", a[0], len(v.Errors))}
			}
			return nil
		}),
	}
}

func newRun(c *cli) *cobra.Command {
	var (
		pairs          []string
		file           string
		wait, follow   bool
		restore, where string
	)
	cmd := &cobra.Command{
		Use:   "run PROCESS",
		Short: "Run a twin",
		Long: `Run a twin with inputs from --input name=value (repeatable) and/or a
file (-f, JSON or YAML; --input wins). Without --wait or --follow it
prints the job and returns; --wait waits for the job to end and shows
it; --follow streams the job's log as it runs. The exit status is 1 when
the job failed or was dismissed.`,
		Example: `  twinstac run twins:water-tank --input inflow=0.4 --input steps=50 --follow
  twinstac run twins:water-tank -f config.yaml --wait -o json`,
		Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			inputs := map[string]any{}
			if file != "" {
				var err error
				if inputs, err = readInputs(cmd.InOrStdin(), file); err != nil {
					return err
				}
			}
			if err := setInputs(inputs, pairs); err != nil {
				return err
			}
			body := client.ExecuteBody{Inputs: &inputs}
			if restore != "" {
				body.Restore = &restore
			}
			if where != "" {
				body.ResultsCollection = &where
			}
			async := "respond-async"
			r, err := call(api.ExecuteWithResponse(cmd.Context(), a[0], &client.ExecuteParams{Prefer: &async}, body))
			if err != nil {
				return err
			}
			if r.JSON201 == nil {
				// Run synchronously after all: the results.
				return c.show(r.Body, func(w io.Writer) { fmt.Fprintln(w, string(r.Body)) })
			}
			job := r.JSON201.JobID
			if !wait && !follow {
				return c.show(r.Body, func(w io.Writer) { jobRows(w, []client.StatusInfo{*r.JSON201}) })
			}
			fmt.Fprintf(c.stderr, "job %s accepted\n", job)
			return c.awaitJob(cmd.Context(), api, job, follow)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&pairs, "input", nil, "an input as name=value (repeatable; JSON values such as 3, true or [1,2] are taken as such)")
	f.StringVarP(&file, "file", "f", "", "a JSON or YAML file of inputs (- reads standard input)")
	f.BoolVar(&wait, "wait", false, "wait until the job ends, and show it")
	f.BoolVar(&follow, "follow", false, "stream the job's log until it ends")
	f.StringVar(&restore, "restore", "", "start from a snapshot item (collection/item)")
	f.StringVar(&where, "results-collection", "", "the collection the result item goes to")
	return cmd
}

// awaitJob waits for a job to end (streaming its log to stdout when
// follow), shows it, and fails when it did not succeed.
func (c *cli) awaitJob(ctx context.Context, api *client.API, job string, follow bool) error {
	out := io.Discard
	if follow {
		out = c.stdout
	}
	if _, err := api.FollowLog(ctx, job, 0, func(l client.LogLine) error {
		_, err := fmt.Fprintln(out, logLine(l))
		return err
	}); err != nil {
		return connOr(err)
	}
	r, err := call(api.GetStatusWithResponse(ctx, job))
	if err != nil {
		return err
	}
	st := r.JSON200
	if follow {
		fmt.Fprintf(c.stderr, "job %s %s\n", job, st.Status)
	} else if err := c.show(r.Body, func(w io.Writer) { jobRows(w, []client.StatusInfo{*st}) }); err != nil {
		return err
	}
	if st.Status != "successful" {
		return fmt.Errorf("job %s %s: %s", job, st.Status, orDash(st.Message))
	}
	return nil
}

// logLine is how a log line prints: [phase stream] text.
func logLine(l client.LogLine) string {
	phase := l.Phase
	if phase == "" {
		phase = "-"
	}
	return fmt.Sprintf("[%s %s] %s", phase, l.Stream, l.Text)
}

func jobRows(w io.Writer, list []client.StatusInfo) {
	rows(w, []string{"JOB", "PROCESS", "STATUS", "PROGRESS", "CREATED", "MESSAGE"})
	for _, j := range list {
		progress, created := "-", "-"
		if j.Progress != nil && *j.Progress >= 0 {
			progress = fmt.Sprintf("%d%%", *j.Progress)
		}
		if j.Created != nil {
			created = j.Created.Local().Format(time.DateTime)
		}
		rows(w, []string{j.JobID, j.ProcessID, string(j.Status), progress, created, clip(orDash(j.Message), 50)})
	}
}

func newJobs(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "List, show, follow, dismiss and save jobs"}
	var (
		statuses  []string
		processes []string
		limit     int
		all       bool
		follow    bool
	)
	list := &cobra.Command{
		Use: "list", Short: "List the jobs you may see, newest first",
		Example: "  twinstac jobs list --status running,accepted\n  twinstac jobs list --process twins:water-tank --all -o ndjson", Args: args(0),
		RunE: c.withAPI(func(cmd *cobra.Command, _ []string, api *client.API) error {
			page := int64(limit)
			p := &client.GetJobsParams{Limit: &page}
			if len(processes) > 0 {
				p.ProcessID = &processes
			}
			if len(statuses) > 0 {
				st := make([]client.GetJobsParamsStatus, len(statuses))
				for i, s := range statuses {
					st[i] = client.GetJobsParamsStatus(s)
				}
				p.Status = &st
			}
			max := limit
			if all {
				max = 0
			}
			docs, jobs, err := collect(api.JobDocs(cmd.Context(), p), max)
			if err != nil {
				return err
			}
			return c.showList(docs, false, func(w io.Writer) { jobRows(w, jobs) })
		}),
	}
	list.Flags().StringSliceVar(&statuses, "status", nil, "accepted, running, successful, failed or dismissed (comma-separated)")
	list.Flags().StringSliceVar(&processes, "process", nil, "jobs of these processes only")
	list.Flags().IntVar(&limit, "limit", 20, "jobs per page, and how many to show without --all")
	list.Flags().BoolVar(&all, "all", false, "follow the pages to the last")
	logs := &cobra.Command{
		Use: "logs JOB", Short: "Show a job's log (-f: follow it live until the job ends)",
		Example: "  twinstac jobs logs 01a2… -f", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			if follow {
				_, err := api.FollowLog(cmd.Context(), a[0], 0, func(l client.LogLine) error {
					_, err := fmt.Fprintln(c.stdout, logLine(l))
					return err
				})
				return connOr(err)
			}
			after := int64(0)
			for {
				r, err := call(api.GetJobLogsWithResponse(cmd.Context(), a[0], &client.GetJobLogsParams{After: &after}))
				if err != nil {
					return err
				}
				for _, l := range r.JSON200.Lines {
					fmt.Fprintln(c.stdout, logLine(l))
				}
				if len(r.JSON200.Lines) == 0 || r.JSON200.Next <= after {
					return nil
				}
				after = r.JSON200.Next
			}
		}),
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the job ends")
	cmd.AddCommand(list, logs, &cobra.Command{
		Use: "status JOB", Short: "Show a job", Example: "  twinstac jobs status 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetStatusWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) { jobRows(w, []client.StatusInfo{*r.JSON200}) })
		}),
	}, &cobra.Command{
		Use: "results JOB", Short: "Show what a successful job made (links to its result items)", Example: "  twinstac jobs results 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetResultWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				rows(w, []string{"OUTPUT", "ITEM"})
				names := make([]string, 0, len(*r.JSON200))
				for k := range *r.JSON200 {
					names = append(names, k)
				}
				slices.Sort(names)
				for _, k := range names {
					rows(w, []string{k, (*r.JSON200)[k].Href})
				}
			})
		}),
	}, &cobra.Command{
		Use: "dismiss JOB", Short: "Dismiss a job: a queued one never starts, a running one is stopped", Example: "  twinstac jobs dismiss 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.DismissWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) { fmt.Fprintf(w, "job %s: dismissal asked\n", a[0]) })
		}),
	}, &cobra.Command{
		Use: "save JOB", Short: "Save a running or finished job's state as a snapshot item", Example: "  twinstac jobs save 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.SaveJobWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				var s client.SaveInfo
				_ = json.NewDecoder(bytes.NewReader(r.Body)).Decode(&s)
				fmt.Fprintf(w, "snapshot %s is being made (%s)\n", s.Snapshot, s.Status)
			})
		}),
	})
	return cmd
}
