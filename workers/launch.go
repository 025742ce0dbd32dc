package workers

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// launchEnv carries a phase's limits to the launcher (LaunchPhase); its
// presence is what makes a process the launcher.
const launchEnv = "TWINSTAC_PHASE_LIMITS"

// encode writes limits as launchEnv's value.
func (l Limits) encode() string {
	return fmt.Sprintf("cpu=%d,as=%d,nofile=%d,fsize=%d", l.CPUSeconds, l.MemoryBytes, l.OpenFiles, l.FileSizeBytes)
}

func decodeLimits(s string) (map[int]uint64, error) {
	out := map[int]uint64{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("limit %q is not name=value", kv)
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("limit %q: %w", kv, err)
		}
		res, ok := map[string]int{"cpu": unix.RLIMIT_CPU, "as": unix.RLIMIT_AS, "nofile": unix.RLIMIT_NOFILE, "fsize": unix.RLIMIT_FSIZE}[k]
		if !ok {
			return nil, fmt.Errorf("unknown limit %q", k)
		}
		if n > 0 {
			out[res] = n
		}
	}
	return out, nil
}

// LaunchPhase makes this process the launcher of a phase script when the
// local executor started it so (the executable's main calls it before
// anything else): it sets the phase's resource limits on itself and
// replaces itself with the script, so that the limits hold from the
// script's first instruction and pass to its children. A script without
// a "#!" line runs with /bin/sh. It returns only when this process is not
// a launcher; when launching fails it exits with status 127.
func LaunchPhase() {
	spec, ok := os.LookupEnv(launchEnv)
	if !ok {
		return
	}
	if err := launch(spec, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "twinstac: cannot start the phase:", err)
		os.Exit(127)
	}
}

func launch(spec string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one script, got %d arguments", len(args))
	}
	limits, err := decodeLimits(spec)
	if err != nil {
		return err
	}
	for res, n := range limits {
		// The hard limit too, so that the script cannot raise it again.
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: n, Max: n}); err != nil {
			return fmt.Errorf("setrlimit %d: %w", res, err)
		}
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, launchEnv+"=") {
			env = append(env, kv)
		}
	}
	script := args[0]
	argv := []string{script}
	head := make([]byte, 2)
	f, err := os.Open(script)
	if err != nil {
		return err
	}
	n, _ := f.Read(head)
	_ = f.Close()
	if !bytes.Equal(head[:n], []byte("#!")) {
		argv = []string{"/bin/sh", script}
	}
	return unix.Exec(argv[0], argv, env)
}
