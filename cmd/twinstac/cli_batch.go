package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/twinstac/twinstac/client"
)

func newBatch(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "batch", Short: "Submit what-if sweeps of a twin, and follow, show or dismiss them"}
	var (
		noWait bool
		poll   time.Duration
	)
	submit := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a batch (a sweep or input sets) and follow it to its end",
		Long: `Submit a batch from a JSON or YAML file (- reads standard input):

  process: twins:water-tank
  inputs: {outflow: 0.2}          # the base inputs of every job
  sweep: {inflow: [0.1, 0.2, 0.3], steps: [10, 100]}
  mode: product                   # every combination; zip: the i-th values together
  maxParallel: 4                  # at most 4 jobs of the batch at once

(or inputSets: [{…}, {…}] instead of a sweep). A progress bar follows
the batch (done / failed / running / queued, rate, time left) on the
error output, and a summary table ends it. The exit status is 1 when a
job of the batch failed or was dismissed.`,
		Example: "  twinstac batch submit sweep.yaml\n  twinstac batch submit sweep.yaml --no-wait -o json",
		Args:    args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			if poll <= 0 {
				return usageError{fmt.Errorf("--poll %s: give a positive interval", poll)}
			}
			body, err := readDoc(cmd.InOrStdin(), a[0])
			if err != nil {
				return err
			}
			r, err := call(api.SubmitBatchWithBodyWithResponse(cmd.Context(), "application/json", bytes.NewReader(body)))
			if err != nil {
				return err
			}
			b := r.JSON201
			if noWait {
				return c.show(r.Body, func(w io.Writer) { batchRows(w, b) })
			}
			fmt.Fprintf(c.stderr, "batch %s: %d jobs of %s\n", b.Id, b.Total, b.Process)
			return c.followBatch(cmd.Context(), api, b, poll)
		}),
	}
	submit.Flags().BoolVar(&noWait, "no-wait", false, "return once the batch is accepted")
	submit.Flags().DurationVar(&poll, "poll", 500*time.Millisecond, "how often the progress is read")
	cmd.AddCommand(submit, &cobra.Command{
		Use: "status BATCH", Short: "Show a batch and its counts", Example: "  twinstac batch status 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.GetBatchWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) { batchRows(w, r.JSON200) })
		}),
	}, &cobra.Command{
		Use: "dismiss BATCH", Short: "Dismiss a batch: its queued jobs never start, its running ones are stopped", Example: "  twinstac batch dismiss 01a2…", Args: args(1),
		RunE: c.withAPI(func(cmd *cobra.Command, a []string, api *client.API) error {
			r, err := call(api.DismissBatchWithResponse(cmd.Context(), a[0]))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) { batchRows(w, r.JSON200) })
		}),
	})
	return cmd
}

// batchRows is a batch as a table: what it is, then its counts.
func batchRows(w io.Writer, b *client.BatchInfo) {
	n := b.Counts
	rows(w, []string{"BATCH", b.Id}, []string{"PROCESS", b.Process}, []string{"STATUS", string(b.Status)},
		[]string{"RESULTS", b.ResultsCollection}, []string{""},
		[]string{"JOBS", "SUCCESSFUL", "FAILED", "DISMISSED", "RUNNING", "QUEUED"},
		[]string{fmt.Sprint(b.Total), fmt.Sprint(n.Successful), fmt.Sprint(n.Failed), fmt.Sprint(n.Dismissed), fmt.Sprint(n.Running), fmt.Sprint(n.Accepted)})
}

// followBatch shows a batch's progress until all its jobs ended, then
// its summary; it fails when a job did not succeed.
func (c *cli) followBatch(ctx context.Context, api *client.API, b *client.BatchInfo, poll time.Duration) error {
	start := time.Now()
	terminal := false
	if f, ok := c.stderr.(*os.File); ok {
		terminal = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	bar := c.bar(b.Total,
		progressbar.OptionSetDescription("starting"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionUseANSICodes(terminal),
		progressbar.OptionSetRenderBlankState(true),
	)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		r, err := call(api.GetBatchWithResponse(ctx, b.Id))
		if err != nil {
			return err
		}
		b = r.JSON200
		n := b.Counts
		done := n.Successful + n.Failed + n.Dismissed
		bar.Describe(fmt.Sprintf("%d done, %d failed, %d running, %d queued", n.Successful, n.Failed+n.Dismissed, n.Running, n.Accepted))
		_ = bar.Set64(done)
		if done >= b.Total {
			break
		}
		select {
		case <-ctx.Done():
			_ = bar.Exit()
			fmt.Fprintln(c.stderr)
			return fmt.Errorf("stopped following batch %s (it goes on; twinstac batch status %s): %w", b.Id, b.Id, ctx.Err())
		case <-t.C:
		}
	}
	_ = bar.Finish()
	fmt.Fprintln(c.stderr)
	took := time.Since(start)
	if err := c.show(mustJSON(b), func(w io.Writer) {
		batchRows(w, b)
		rows(w, []string{""}, []string{"TOOK", took.Round(time.Millisecond).String()},
			[]string{"RATE", fmt.Sprintf("%.1f jobs/s", float64(b.Total)/took.Seconds())})
	}); err != nil {
		return err
	}
	if bad := b.Counts.Failed + b.Counts.Dismissed; bad > 0 {
		return fmt.Errorf("batch %s: %d of %d jobs did not succeed (twinstac jobs list --status failed)", b.Id, bad, b.Total)
	}
	return nil
}
