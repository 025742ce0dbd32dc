package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/twinstac/twinstac/client"
)

// The client commands talk to a server only through the generated
// client (package client). Their exit codes tell failures apart.
const (
	exitFailure  = 1 // anything else
	exitUsage    = 2 // a wrong command line, or a request the server found invalid
	exitAuth     = 3 // not signed in, or not allowed (401, 403)
	exitNotFound = 4 // 404, 410
	exitServer   = 5 // 5xx, or the server could not be reached
	// exitInterrupted is a command stopped by SIGINT or SIGTERM, as
	// shells report a command killed by SIGINT.
	exitInterrupted = 130
)

// usageError is a command line that is wrong.
type usageError struct{ error }

// exitCode is the process's exit status for err.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		return exitUsage // cobra's error for a command that does not exist
	}
	switch s := client.StatusOf(err); {
	case s == 401 || s == 403:
		return exitAuth
	case s == 404 || s == 410:
		return exitNotFound
	case s >= 500:
		return exitServer
	case s >= 400:
		return exitUsage
	}
	var ce connError
	if errors.As(err, &ce) {
		return exitServer
	}
	return exitFailure
}

// connError is a call that did not reach the server.
type connError struct{ error }

func (e connError) Unwrap() error { return e.error }

// args checks the number of arguments of a command, as a usage error.
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d; see %s --help", cmd.CommandPath(), n, len(a), cmd.CommandPath())}
		}
		return nil
	}
}

// cliConfig is what login stores: where the server is and the token.
type cliConfig struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
}

// configPath is the file login writes: $TWINSTAC_CONFIG, or
// twinstac/config.json in the user's configuration folder.
func configPath() (string, error) {
	if p := os.Getenv("TWINSTAC_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "twinstac", "config.json"), nil
}

func loadConfig() (cliConfig, error) {
	var c cliConfig
	p, err := configPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

func saveConfig(c cliConfig) (string, error) {
	p, err := configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	// Written aside and renamed, with mode 0600 from the start: the
	// token is never readable by others, not even for a moment.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return p, os.Rename(tmp.Name(), p)
}

// cli is what the client commands share: the output and the connection
// settings, from the flags, the environment and the stored login (in
// that order).
type cli struct {
	stdout, stderr io.Writer
	url, token     string
	output         string
}

// flags registers the connection and output flags on the client
// commands' parent.
func (c *cli) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.url, "url", "", "the server's URL (default: $TWINSTAC_URL, then the one login stored)")
	f.StringVar(&c.token, "token", "", "the API token (default: $TWINSTAC_TOKEN, then the one login stored)")
	f.StringVarP(&c.output, "output", "o", "", "output: table, json, ndjson or yaml (default: table on a terminal, json otherwise)")
}

// api connects to the server.
func (c *cli) api() (*client.API, error) {
	stored, err := loadConfig()
	if err != nil {
		return nil, err
	}
	url, token := firstOf(c.url, os.Getenv("TWINSTAC_URL"), stored.URL), firstOf(c.token, os.Getenv("TWINSTAC_TOKEN"), stored.Token)
	if url == "" {
		return nil, usageError{errors.New("no server: run twinstac login --url URL --token TOKEN, or set TWINSTAC_URL")}
	}
	return connect(url, token)
}

// connect makes the client of the server at url, with token when not
// empty.
func connect(url, token string) (*client.API, error) {
	opts := []client.Option{client.UserAgent("twinstac-cli")}
	if token != "" {
		opts = append(opts, client.Token(token))
	}
	api, err := client.New(url, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return api, nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// format is the output format asked for, or the default.
func (c *cli) format() (string, error) {
	switch c.output {
	case "":
		if f, ok := c.stdout.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
			return "table", nil
		}
		return "json", nil
	case "table", "json", "ndjson", "yaml":
		return c.output, nil
	}
	return "", usageError{fmt.Errorf("--output %q: use table, json, ndjson or yaml", c.output)}
}

// show prints a document: raw JSON as asked, or as a table by table.
func (c *cli) show(raw []byte, table func(w io.Writer)) error {
	return c.showList([]json.RawMessage{raw}, true, table)
}

// showList prints a list of documents: a JSON array (one document when
// single), one per line (ndjson), a YAML list, or table.
func (c *cli) showList(docs []json.RawMessage, single bool, table func(w io.Writer)) error {
	f, err := c.format()
	if err != nil {
		return err
	}
	switch f {
	case "table":
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	case "ndjson":
		for _, d := range docs {
			var b bytes.Buffer
			if err := json.Compact(&b, d); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, b.String())
		}
		return nil
	}
	var v any = docs
	if single && len(docs) == 1 {
		v = docs[0]
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if f == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = c.stdout.Write(b)
		return err
	}
	_, err = fmt.Fprintln(c.stdout, string(b))
	return err
}

// call runs a generated client call and turns a failed answer into an
// error (a *client.Error, or a connError when the server was not
// reached).
func call[R any](r R, err error) (R, error) {
	r, err = client.Check(r, err)
	if err != nil {
		return r, connOr(err)
	}
	return r, nil
}

// orDash is s, or - when empty.
func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

// rows writes tab-separated rows.
func rows(w io.Writer, rs ...[]string) {
	for _, r := range rs {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
}

// newLogin makes `twinstac login`.
func newLogin(c *cli) *cobra.Command {
	var url, token string
	cmd := &cobra.Command{
		Use:   "login --url URL --token TOKEN",
		Short: "Store the server's URL and your API token for the other commands",
		Long: `Store the server's URL and your API token in the user configuration
folder (twinstac/config.json, readable by you only; $TWINSTAC_CONFIG names
another file). The token is checked with the server first.
TWINSTAC_URL and TWINSTAC_TOKEN, and the --url and --token flags of any
command, override what is stored.`,
		Example: "  twinstac login --url https://dt.example.org --token tsk_0123…",
		Args:    args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return usageError{errors.New("--url is required")}
			}
			// Only what is given here: no stored or environment token
			// goes to the server being signed in to.
			api, err := connect(url, token)
			if err != nil {
				return err
			}
			who, err := call(api.WhoamiWithResponse(cmd.Context()))
			if err != nil {
				return err
			}
			p, err := saveConfig(cliConfig{URL: api.Server, Token: token})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "signed in to %s as %s; stored in %s\n", api.Server, describeWho(who.JSON200), p)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the server's URL")
	cmd.Flags().StringVar(&token, "token", "", "your API token (empty: anonymous)")
	return cmd
}

func describeWho(w *client.Whoami) string {
	if w == nil || w.Anonymous {
		return "an anonymous user"
	}
	who := strings.Join(w.Subjects, ", ")
	if w.Admin {
		who += " (admin)"
	}
	return who
}

// newWhoami makes `twinstac whoami`.
func newWhoami(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show who the server takes you for",
		Example: "  twinstac whoami -o json",
		Args:    args(0),
		RunE: c.withAPI(func(cmd *cobra.Command, _ []string, api *client.API) error {
			r, err := call(api.WhoamiWithResponse(cmd.Context()))
			if err != nil {
				return err
			}
			return c.show(r.Body, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", describeWho(r.JSON200))
			})
		}),
	}
}

// mustJSON is v as JSON (v is a value the client decoded).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// withAPI makes the RunE of a command that talks to the server: fn gets
// the connection.
func (c *cli) withAPI(fn func(cmd *cobra.Command, args []string, api *client.API) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		api, err := c.api()
		if err != nil {
			return err
		}
		return fn(cmd, args, api)
	}
}

// bar is a progress bar of max steps (-1: unknown) on the error output,
// redrawn at most ten times a second; opts add to or override these.
func (c *cli) bar(max int64, opts ...progressbar.Option) *progressbar.ProgressBar {
	base := []progressbar.Option{progressbar.OptionSetWriter(c.stderr), progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true), progressbar.OptionUseANSICodes(false), progressbar.OptionThrottle(100 * time.Millisecond)}
	return progressbar.NewOptions64(max, append(base, opts...)...)
}
