package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedClientIsCurrent fails when client.gen.go is not what
// oapi-codegen (the version go.mod names) makes of the exported OpenAPI
// document with oapi-codegen.yaml: the API changed and `go generate
// ./client` was not run, or the file was edited by hand.
func TestGeneratedClientIsCurrent(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run oapi-codegen: %v", err)
	}
	// The same configuration, writing into a temporary folder.
	raw, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "client.gen.go")
	cfg := strings.Replace(string(raw), "\noutput: client.gen.go\n", "\noutput: "+out+"\n", 1)
	if cfg == string(raw) {
		t.Fatal("oapi-codegen.yaml no longer has the line output: client.gen.go")
	}
	cfgFile := filepath.Join(dir, "oapi-codegen.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "tool", "oapi-codegen", "-config", cfgFile, "../openapi/openapi-3.0.yaml")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("client.gen.go differs from what oapi-codegen makes of openapi/openapi-3.0.yaml at line %d:\n have %q\n want %q\nrun: go generate ./client", i+1, g, w)
		}
	}
}
